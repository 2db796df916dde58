"""The submission listener: aiosmtpd's protocol, hardened where the library is lenient.

What this subclass adds (reliability-tests.md §0 lists the library behaviour it answers):

- command lines must end in CRLF; a bare LF ends the session with 521 (SMUG-11);
- a second STARTTLS gets ``554 5.5.1`` instead of killing the session (INJ-4);
- AUTH PLAIN refuses an authzid that differs from the authcid (AUTH-3); passwords are
  checked in a worker thread (scrypt), throttled per client and per account (AUTH-1);
- connection limits, overall and per client (LIM-5), and a maximum session age so a
  NOOP loop cannot hold a session forever (LIM-4);
- every reply carries an RFC 3463 enhanced status code (library replies are translated).

Policy is not here: :mod:`gateway.smtp.handler` turns MAIL/RCPT/DATA into filter calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, AuthResult

from gateway.directory.staff import StaffDirectory
from gateway.settings import Settings
from gateway.throttle import LoginThrottle

log = structlog.get_logger("gateway.smtp")

# Library replies that lack an enhanced status code get one by reply code (RFC 3463, RFC 2034).
_ENHANCED = {
    "235": "2.7.0",
    "421": "4.7.0",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "552": "5.3.4",
    "554": "5.5.1",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(\s|$)")


def with_enhanced_code(reply: str) -> str:
    if reply in ("250 OK", "221 Bye"):
        return f"{reply[:3]} 2.0.0 {reply[4:]}"
    # EHLO's "250 HELP" and other 2xx lines stay as they are.
    if len(reply) < 4 or reply[3] != " " or _HAS_ENHANCED.match(reply):
        return reply
    code = reply[:3]
    enhanced = _ENHANCED.get(code)
    if enhanced is None:
        return reply
    text = reply[4:].removeprefix("Error: ")
    return f"{code} {enhanced} {text}"


class BareLineFeed(Exception):
    """A command line ended in LF without CR (RFC 5321 2.3.8)."""


@dataclass
class ConnectionLimiter:
    """Open connections, overall and per client address (LIM-5)."""

    total_limit: int
    per_client_limit: int
    total: int = 0
    per_client: Counter[str] = field(default_factory=Counter)

    def acquire(self, client: str) -> bool:
        if self.total >= self.total_limit or self.per_client[client] >= self.per_client_limit:
            return False
        self.total += 1
        self.per_client[client] += 1
        return True

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


@dataclass
class ListenerContext:
    """Shared by every connection of every listener."""

    settings: Settings
    staff: StaffDirectory
    throttle: LoginThrottle
    limiter: ConnectionLimiter


class GatewaySMTP(SMTP):
    def __init__(self, handler: Any, ctx: ListenerContext, *, implicit_tls: bool, **kw: Any):
        lim = ctx.settings.limits
        noop = lim.max_noops
        with warnings.catch_warnings():
            # On the implicit-TLS listener the whole connection is TLS, so aiosmtpd's
            # "AUTH without requiring TLS" warning does not apply.
            warnings.simplefilter("ignore")
            super().__init__(
                handler,
                hostname=ctx.settings.hostname,
                ident="c4f-gateway ESMTP",
                data_size_limit=lim.max_message_size,
                timeout=lim.idle_timeout,
                auth_required=True,
                auth_require_tls=not implicit_tls,
                require_starttls=not implicit_tls,
                command_call_limit={
                    "NOOP": noop,
                    "RSET": noop,
                    "HELP": noop,
                    "VRFY": noop,
                    "EXPN": noop,
                    "*": 100_000,
                },
                **kw,
            )
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.client_ip = ""
        self._admitted = False
        self._age_handle: asyncio.TimerHandle | None = None
        self._in_auth = False
        self._auth_failures = 0

    # -- connection lifecycle ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admitted:  # the second call, after STARTTLS
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else "unknown"
        if not self.ctx.limiter.acquire(self.client_ip):
            log.warning("connection_refused_limit", client=self.client_ip)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.7.0 Too many connections; try again later\r\n")
            transport.close()
            return
        self._admitted = True
        self._age_handle = self.loop.call_later(
            self.ctx.settings.limits.max_session_age, self._too_old
        )
        log.info("connection_open", client=self.client_ip, implicit_tls=self.implicit_tls)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._admitted:
            return  # refused at connect: the library never set up this session
        if self._age_handle is not None:
            self._age_handle.cancel()
            self._age_handle = None
            self.ctx.limiter.release(self.client_ip)
            log.info("connection_closed", client=self.client_ip)
        super().connection_lost(error)

    def _too_old(self) -> None:
        log.info("session_too_old", client=self.client_ip)
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.write(b"421 4.4.2 Session lasted too long; closing\r\n")
            self.transport.close()

    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._cb_client_connected(reader, writer)
        original = reader.readuntil

        async def readuntil(separator: Any = b"\n") -> bytes:
            line = await original(separator)
            # DATA reads up to CRLF itself; command lines and AUTH answers come here.
            if separator == b"\n" and not line.endswith(b"\r\n"):
                raise BareLineFeed()
            return line

        reader.readuntil = readuntil  # type: ignore[method-assign]

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, BareLineFeed):
            log.warning("bare_lf_command", client=self.client_ip)
            self.loop.call_soon(self._close)
            return "521 5.5.2 Command lines must end with CRLF (RFC 5321 2.3.8); closing"
        log.exception("smtp_session_error", client=self.client_ip, error=type(error).__name__)
        return "451 4.3.0 Local error; try again later"

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def push(self, status: Any) -> None:
        await super().push(with_enhanced_code(status) if isinstance(status, str) else status)

    # -- commands the library gets wrong for us ------------------------------------------

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.implicit_tls or self._tls_protocol is not None:
            await self.push("554 5.5.1 TLS already active")
            return
        await super().smtp_STARTTLS(arg)
        if self._tls_protocol is not None and self.session is not None and not self.session.ssl:
            # The connection closed before the handshake finished (say, the idle timer fired).
            # asyncio then wakes the handshake waiter without an error and never tells us the
            # connection is gone, so the session would hang forever: end it here (INJ-5).
            log.info("starttls_abandoned", client=self.client_ip)
            self.connection_lost(None)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except binascii.Error:
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 Cannot decode base64"
                )
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
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = base64.b64decode(args[1].encode(), validate=True)
            except binascii.Error:
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 Cannot decode base64"
                )
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
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
        member = await asyncio.to_thread(self.ctx.staff.authenticate, login, password)
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
        return AuthResult(success=True, auth_data=member)
