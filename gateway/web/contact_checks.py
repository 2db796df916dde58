"""What the console warns about on a contact, and the MX sweep it runs after changes.

The warnings are the CLI's states in words (``contacts list`` and ``contacts review``):
a lapsed or soon-due approval, a soft fax sign not yet attested, and the MX states of
:func:`gateway.directory.mx_state.mx_states` (the one wording both use).
"""

from __future__ import annotations

from datetime import date, timedelta

from starlette.requests import Request

from gateway.directory.contact import Contact
from gateway.directory.mx_state import mx_states
from gateway.directory.mx_sweep import Flag, sweep
from gateway.web.auth import Viewer
from gateway.web.console import Console
from gateway.web.render import flash

DUE_SOON = 30  # days: the same horizon as `contacts review`


def warnings(console: Console, c: Contact, today: date) -> list[str]:
    out = []
    if c.expired(today):
        out.append("approval lapsed: mail to it is refused until renewed")
    elif date.fromisoformat(c.review_due) <= today + timedelta(days=DUE_SOON):
        out.append(f"review due {c.review_due}")
    sign = console.fax_routes.classify(c.address) if c.kind == "address" else None
    if sign is not None and not c.not_fax_by:
        out.append(f"looks like {sign.reason}: refused until attested not a fax")
    out += [s.words for s in mx_states(c)]  # as `contacts list` and `show` word them
    return out


async def sweep_domains(console: Console, domains: set[str] | None) -> list[Flag]:
    return await sweep(
        console.contacts, console.resolver, console.fax_routes.providers, domains=domains
    )


async def flags_note(request: Request, v: Viewer, flags: list[Flag], done: str) -> None:
    if flags:
        words = "; ".join(f"{f.ref} {f.domain}: {f.kind}: {f.detail}" for f in flags)
        await flash(request, v, f"{done} MX check: {words}", error=True)
    else:
        await flash(request, v, f"{done} MX check: no flags.")
