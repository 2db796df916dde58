"""What the console warns about on a contact, and the MX sweep it runs after changes.

The warnings are the CLI's states in words (``contacts list`` and ``contacts review``):
a lapsed or soon-due approval, a fax-MX flag from the DNS sweep, a soft fax sign not yet
attested, MX hosts that changed since approval, a domain that takes no mail.
"""

from __future__ import annotations

from datetime import date, timedelta

from starlette.requests import Request

from gateway.directory.contacts import Contact
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
    if c.mx_flag:
        out.append(f"fax route by DNS: {c.mx_flag}")
    sign = console.fax_routes.classify(c.address) if c.kind == "address" else None
    if sign is not None and not c.not_fax_by:
        out.append(f"looks like {sign.reason}: refused until attested not a fax")
    if c.mx_hosts is not None and c.mx_seen is not None and set(c.mx_hosts) != set(c.mx_seen):
        out.append(
            f"MX hosts changed: {', '.join(c.mx_hosts) or '(none)'} -> "
            f"{', '.join(c.mx_seen) or '(none)'}"
        )
    if c.mx_seen == ():
        out.append("the domain takes no mail (no MX)")
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
