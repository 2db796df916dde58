"""Issuing a one-time enrolment link: ``c4f-gateway web enrol-link LOGIN`` and the staff
page's button do it here, alike. The token is stored only as a keyed hash
(:meth:`gateway.web.totp.TotpStore.issue_link`), the issue is recorded in the register's
admin trail ("totp enrolment link"), and the link itself is shown once, to the admin who
asked, never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings.web import WebSettings
from gateway.web.console import Console
from gateway.web.totp import LINK_TTL


@dataclass(frozen=True)
class IssuedLink:
    login: str
    url: str
    hours: int
    replaces_factor: bool  # they have a second factor, which works until they confirm


def link_base(web: WebSettings) -> str:
    """Where people reach the console: ``[web] public_url``, else the listen address."""
    if web.public_url:
        return web.public_url.rstrip("/")
    host, port = web.host_port
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if web.tls else 'http'}://{host}:{port}"


def issue(console: Console, login: str, actor: str) -> IssuedLink:
    """A new link for ``login`` (any older unused one stops working), recorded as issued
    by ``actor``. Blocking."""
    token = console.totp.issue_link(login)
    console.audit(actor, "totp enrolment link", {"login": login})
    return IssuedLink(
        login=login,
        url=f"{link_base(console.web)}/enrol/{token}",
        hours=int(LINK_TTL // 3600),
        replaces_factor=console.totp.enrolled(login),
    )
