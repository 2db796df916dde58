"""The confidentiality policy, for every signed-in role: its text, version and last review.

"C4F referrers and users will be made aware of the existence of this policy and have access
to it upon request. C4F staff will be given a copy of this policy." The page shows the text
the gateway serves ([policy] file, by default the shipped copy), escaped and as written;
``/policy.txt`` hands out the same bytes to keep or pass on. Managers and admins also see
a banner on every page once the annual review is overdue (:mod:`gateway.web.policy_banner`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import ConfigError
from gateway.web.auth import console_of, viewer
from gateway.web.render import download, page


async def policy_page(request: Request) -> Response:
    v = await viewer(request, "staff")
    console = console_of(request)
    policy = console.settings.policy
    today = datetime.fromtimestamp(console.clock(), UTC).date()
    try:
        text, problem = await asyncio.to_thread(policy.text), ""
    except ConfigError as exc:
        text, problem = "", str(exc)
    return await page(
        request,
        v,
        "policy.html",
        {
            "text": text,
            "problem": problem,
            "version": policy.version,
            "reviewed_on": policy.reviewed_on,
            "due": policy.review_due().isoformat(),
            "overdue": policy.overdue(today),
        },
    )


async def policy_text(request: Request) -> Response:
    await viewer(request, "staff")
    policy = console_of(request).settings.policy
    try:
        text = await asyncio.to_thread(policy.text)
    except ConfigError as exc:
        return PlainTextResponse(f"The policy's text cannot be read: {exc}", status_code=500)
    name = f"confidentiality-policy-{policy.version}.txt"
    safe = "".join(c if c.isalnum() or c in "-._" else "-" for c in name)
    return download(text, safe, "text/plain; charset=utf-8")


routes = [
    Route("/policy", policy_page),
    Route("/policy.txt", policy_text),
]
