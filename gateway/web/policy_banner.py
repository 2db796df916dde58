"""The banner managers and admins see on every page once the policy's annual review is
overdue ("The policy will be reviewed and if necessary updated annually"; [policy]
reviewed_on more than 12 months before the console's clock). Staff are not shown it: the
review is their line managers' to arrange.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from gateway.web.auth import Viewer, console_of


def review_banner(request: Request, who: Viewer | None) -> dict[str, Any] | None:
    """The policy's version and dates, for a manager or admin, once its review is overdue."""
    if who is None or not who.is_reviewer:
        return None
    console = console_of(request)
    policy = console.settings.policy
    today = datetime.fromtimestamp(console.clock(), UTC).date()
    if not policy.overdue(today):
        return None
    return {
        "version": policy.version,
        "reviewed_on": policy.reviewed_on,
        "due": policy.review_due().isoformat(),
    }
