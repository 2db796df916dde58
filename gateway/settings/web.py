"""The ``[web]`` settings section: where the review console listens and how it signs in.

Hooked into :class:`gateway.settings.Settings` as ``web: WebSettings``; until then
:func:`web_settings` falls back to these defaults (as :mod:`gateway.settings.register`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from gateway.errors import ConfigError
from gateway.hostport import parse_hostport

# Staff sign in only to see and withdraw their own held messages (gateway.web.pages_held);
# managers and admins review the register; admins also keep contacts, queue and accounts.
CONSOLE_ROLES = ("staff", "manager", "admin")
REVIEW_ROLES = ("manager", "admin")
# Which register entries a manager reads in the console (admins and the CLI read them all).
ManagerScope = Literal["reports", "all"]


@dataclass(frozen=True)
class WebSettings:
    # Loopback by default: the console is for the centre's own machines; put it behind
    # the centre's VPN or a reverse proxy rather than on a public address.
    listen: str = "127.0.0.1:8025"
    # HTTPS with the gateway's own certificate ([tls] cert_file and key_file).
    tls: bool = False
    # Signed out after this many idle seconds, and after session_max_age whatever happens.
    session_idle_timeout: float = 900.0
    session_max_age: float = 12 * 3600.0
    # Console roles that must give a TOTP code after their password. Anyone enrolled
    # (`c4f-gateway web totp-enrol LOGIN`) is always asked for one.
    require_totp: tuple[str, ...] = REVIEW_ROLES
    # How often the console re-runs `register verify` for the banner on every page.
    verify_interval: float = 900.0
    # "reports": a manager reads only the register entries of the staff they line-manage
    # and those they acted on themselves (as held messages go only to the sender's line
    # managers; policy, "Disclosing information"); "all": the whole register.
    manager_scope: ManagerScope = "reports"
    # The console's address as approvers reach it (for example "https://console.centre.org"):
    # notices about held messages link to the message there. "": no link.
    public_url: str = ""

    def __post_init__(self) -> None:
        parse_hostport(self.listen, "web.listen")
        for key in ("session_idle_timeout", "session_max_age", "verify_interval"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"web.{key}: must be greater than zero")
        unknown = sorted(set(self.require_totp) - set(CONSOLE_ROLES))
        if unknown:
            raise ConfigError(
                f"web.require_totp: {', '.join(unknown)}: "
                "console roles are staff, manager and admin"
            )
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise ConfigError("web.public_url: must start with https:// (or http://)")
        if self.manager_scope not in get_args(ManagerScope):
            raise ConfigError("web.manager_scope: must be 'reports' or 'all'")

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_hostport(self.listen, "web.listen")


def web_settings(settings: Any) -> WebSettings:
    """``settings.web`` when Settings has the section, else the defaults."""
    found = getattr(settings, "web", None)
    return found if isinstance(found, WebSettings) else WebSettings()
