"""Who is looking: the signed-in viewer, their role, and checked forms.

Roles (gateway.directory.staff): ``staff`` only sees and withdraws their own held messages;
``manager`` reviews the register, records follow-ups and decides on their reports' held
messages; ``admin`` also keeps contacts, the queue and console accounts. The role is
read from the staff directory on every request, so a changed or removed account loses
access at its next click, not at its next sign-in.

Every form carries the session's CSRF token (OWASP synchronizer token); a POST without
it, or with another session's, is refused before anything changes.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import FormData
from starlette.requests import Request

from gateway.directory.staff import StaffMember
from gateway.settings.web import CONSOLE_ROLES, REVIEW_ROLES
from gateway.web.console import Console
from gateway.web.sessions import Session

# "__Host-": sent only over HTTPS (or to localhost), only to this host, path / (RFC 6265bis).
COOKIE = "__Host-c4f-console"
SIGNIN_COOKIE = "__Host-c4f-signin"  # double-submit token for the sign-in form
MAX_FORM = 4 * 1024 * 1024  # a contacts CSV; everything else is tiny

Need = Literal["staff", "manager", "admin"]


class SignInRequired(Exception):
    """No live session: the handler sends the browser to the sign-in page."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this page (a manager on an admin page, a
    staff member anywhere but their held messages); ``need`` is the role it takes."""

    def __init__(self, need: Need) -> None:
        super().__init__(need)
        self.need = need


class CSRFRefused(Exception):
    """A form without this session's token."""


@dataclass(frozen=True)
class Viewer:
    session: Session
    member: StaffMember

    @property
    def login(self) -> str:
        return self.member.login

    @property
    def is_admin(self) -> bool:
        return self.member.role == "admin"

    @property
    def is_reviewer(self) -> bool:
        """A manager or admin: the register and held-message decisions (not only staff)."""
        return self.member.role in REVIEW_ROLES

    @property
    def home(self) -> str:
        return landing(self.member.role)


def landing(role: str) -> str:
    """Where sign-in lands: reviewers at the register, staff at their held messages."""
    return "/register" if role in REVIEW_ROLES else "/held"


def client_address(request: Request) -> str:
    """The connecting client's address, for the sign-in throttle and the admin trail."""
    return request.client.host if request.client else "?"


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def may_use_console(member: StaffMember | None) -> bool:
    return member is not None and member.role in CONSOLE_ROLES


async def viewer(request: Request, need: Need = "manager") -> Viewer:
    """The signed-in viewer, if their role reaches ``need`` ("staff": any console role)."""
    console = console_of(request)
    token = request.cookies.get(COOKIE, "")
    session = await asyncio.to_thread(console.sessions.get, token)
    if session is None or session.stage != "full":
        raise SignInRequired
    member = await asyncio.to_thread(console.staff.get, session.login)
    if member is None or not may_use_console(member):
        await asyncio.to_thread(console.sessions.end, token)
        raise SignInRequired
    if need == "admin" and member.role != "admin":
        raise Forbidden(need)
    if need == "manager" and member.role not in REVIEW_ROLES:
        raise Forbidden(need)
    return Viewer(session, member)


async def checked_form(request: Request, session: Session) -> FormData:
    """The POSTed form, once its CSRF token matches ``session``'s."""
    form = await request.form(max_part_size=MAX_FORM)
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
        raise CSRFRefused
    return form


def text(form: FormData, name: str, limit: int = 2000) -> str:
    """A text field, trimmed; '' when absent or a file. Over-long input is cut."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""
