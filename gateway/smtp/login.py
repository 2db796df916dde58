"""AUTH PLAIN and AUTH LOGIN for the submission listener (:mod:`gateway.smtp.listener`).

What aiosmtpd's own mechanisms do not: PLAIN refuses an authzid that differs from the
authcid (AUTH-3); ``AUTH PLAIN =`` (an empty initial response) gets the empty continuation
(AUTH-8); the password is checked against the staff directory, in a worker thread when it
needs the hash check (scrypt) and on the event loop when the login was verified within
``[auth] cache_ttl``; failures are throttled per client and per account across workers
(AUTH-1, :mod:`gateway.throttle`), and a session closes after too many (AUTH-2).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Any

import structlog
from aiosmtpd.smtp import SMTP, AuthResult

if TYPE_CHECKING:
    from gateway.smtp.context import ListenerContext
    from gateway.smtp.limits import Slot

log = structlog.get_logger("gateway.smtp")


def _initial_response(arg: str) -> bytes | None:
    """An AUTH initial response decoded; None if it is not base64."""
    if arg == "=":
        return b""  # RFC 4954 4: "=" is an initial response of zero length
    try:
        return base64.b64decode(arg.encode(), validate=True)
    except binascii.Error:
        return None


_BAD_BASE64 = AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode base64")


class LoginSession(SMTP):
    """The AUTH mechanisms of a session; :class:`gateway.smtp.listener.GatewaySMTP` sets
    the attributes below."""

    ctx: ListenerContext
    client_ip: str
    _slot: Slot | None
    _in_auth: bool  # a 334 exchange is under way (its lines have their own limit)
    _auth_failures: int

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _challenge(self, text: str) -> bytes | None:
        """Send ``334`` + challenge, return the decoded answer; None if the library has
        already answered (``*`` or bad base64)."""
        self._in_auth = True
        try:
            answer = await self.challenge_auth(text)
        finally:
            self._in_auth = False
        return answer if isinstance(answer, bytes) else None

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        blob = _initial_response(args[1]) if len(args) == 2 else b""
        if blob is None:
            return _BAD_BASE64
        if not blob:
            # No initial response, or an empty one: the empty challenge asks for it (RFC 4954 4).
            blob = await self._challenge("")
            if blob is None:
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(
                success=False,
                handled=False,
                message="501 5.5.2 AUTH PLAIN needs authzid NUL authcid NUL password",
            )
        authzid, login, password = parts
        if authzid and authzid != login:
            # RFC 4616: acting as another identity is not something staff may do (AUTH-3).
            return AuthResult(
                success=False,
                handled=False,
                message="535 5.7.8 Authorization identity must match login",
            )
        return await self._check_login(login, password)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        login = _initial_response(args[1]) if len(args) == 2 else b""
        if login is None:
            return _BAD_BASE64
        if not login:
            login = await self._challenge(self.AuthLoginUsernameChallenge)
            if login is None:
                return AuthResult(success=False, handled=True)
        password = await self._challenge(self.AuthLoginPasswordChallenge)
        if password is None:
            return AuthResult(success=False, handled=True)
        return await self._check_login(login, password)

    async def _check_login(self, raw_login: bytes, raw_password: bytes) -> AuthResult:
        try:
            login = raw_login.decode("utf-8")
            password = raw_password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 Login and password must be UTF-8"
            )
        throttle = self.ctx.throttle
        blocked = throttle.blocked(self.client_ip, login)
        if blocked:
            log.warning("auth_throttled", client=self.client_ip, login=login, limit=blocked)
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Too many failed logins; try again later",
            )
        staff = self.ctx.staff
        member = staff.recently_verified(login, password) or await asyncio.to_thread(
            staff.authenticate, login, password
        )
        if member is None:
            throttle.failed(self.client_ip, login)
            self._auth_failures += 1
            log.warning(
                "auth_failed", client=self.client_ip, login=login, failures=self._auth_failures
            )
            if self._auth_failures >= self.ctx.settings.auth.max_failures_per_session:
                self.loop.call_soon(self._close)
                return AuthResult(
                    success=False,
                    handled=False,
                    message="421 4.7.0 Too many failed logins; closing",
                )
            return AuthResult(
                success=False, handled=False, message="535 5.7.8 Authentication credentials invalid"
            )
        throttle.succeeded(self.client_ip, login)
        log.info("auth_ok", client=self.client_ip, login=member.login)
        if self._slot is not None:
            self._slot.logged_in = True  # never evicted from now on (LIM-8)
            self._reset_timeout()  # and the ordinary idle timeout from the login on
        return AuthResult(success=True, auth_data=member)
