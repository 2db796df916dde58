"""The submission listener: aiosmtpd's protocol, hardened where the library is lenient.

What this subclass adds (reliability-tests.md §0 lists the library behaviour it answers):

- command lines must end in CRLF; a bare LF ends the session with 521 (SMUG-11), and
  an over-long line gets ``500 ... too long`` (AUTH-7; both in :mod:`gateway.smtp.lines`);
- a second STARTTLS gets ``554 5.5.1`` instead of killing the session (INJ-4);
- AUTH PLAIN and LOGIN as :mod:`gateway.smtp.login` says (AUTH-1, -2, -3, -8);
- a multi-line reply (EHLO) is written once, with its last line;
- plain MAIL and RCPT paths are read without the email package (:mod:`.paths`), and the
  handler's hooks are found once, not at every connection (:mod:`.hooks`);
- DATA is read in blocks, not line by line (:mod:`gateway.smtp.data`), with the same
  replies as the library's (552 over the size limit, 500 for a line over 1,001 octets);
- connection slots (:mod:`gateway.smtp.limits`: per client, per network, and the idlest
  connection not logged in evicted when full; LIM-5, LIM-8), a short idle timeout before
  login (LIM-7), and a maximum session age so a NOOP loop cannot hold a session (LIM-4);
- every reply carries an RFC 3463 enhanced status code (:mod:`gateway.smtp.replies`).

Policy is not here: :mod:`gateway.smtp.handler` turns MAIL/RCPT/DATA into filter calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from asyncio import sslproto
from typing import Any

import structlog
from aiosmtpd.smtp import syntax

from gateway.smtp.context import ListenerContext
from gateway.smtp.data import DataState, GatewayEnvelope, read_data
from gateway.smtp.hooks import NO_HOOKS, adopt
from gateway.smtp.limits import Slot
from gateway.smtp.lines import BareLineFeed, LineTooLong, guard_lines
from gateway.smtp.login import LoginSession
from gateway.smtp.paths import plain_path
from gateway.smtp.replies import with_enhanced_code

log = structlog.get_logger("gateway.smtp")

# asyncio gives each TLS connection a read buffer of SSLProtocol.max_size, 256 KiB: 125 MiB
# for 500 idle sessions. 64 KiB still takes four full TLS records (16 KiB) per read.
sslproto.SSLProtocol.max_size = 64 * 1024


class GatewaySMTP(LoginSession):
    def __init__(self, handler: Any, ctx: ListenerContext, *, implicit_tls: bool, **kw: Any):
        lim = ctx.settings.limits
        noop = lim.max_noops
        # On the implicit-TLS listener the whole connection is TLS, so aiosmtpd's "AUTH
        # without requiring TLS" warning does not apply. (Only there: changing the warning
        # filters for every connection would also throw away the warnings module's cache.)
        with warnings.catch_warnings(action="ignore") if implicit_tls else contextlib.nullcontext():
            super().__init__(
                NO_HOOKS,  # the handler's hooks are adopted below, found once for all
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
        adopt(self, handler)
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.client_ip = ""
        self._slot: Slot | None = None  # None: refused at connect, or not yet connected
        self._age_handle: asyncio.TimerHandle | None = None
        self._idle_deadline = 0.0  # loop time at which an idle session is closed
        self._in_auth = False
        self._auth_failures = 0
        self._continued: list[str] = []  # the lines of a multi-line reply so far

    def __dir__(self) -> list[str]:
        # aiosmtpd finds each session's command and AUTH methods by listing every
        # attribute of the new session (inspect.getmembers: a getattr per name), a tenth of
        # a millisecond per connection. Those names are the class's: listed once.
        return _COMMAND_NAMES

    def _create_envelope(self) -> GatewayEnvelope:
        return GatewayEnvelope()

    # -- connection lifecycle ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._slot is not None:  # the second call, after STARTTLS
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else "unknown"
        self._slot = self.ctx.limiter.admit(self.client_ip, self.loop.time(), self._evict)
        if self._slot is None:
            log.warning("connection_refused_limit", client=self.client_ip)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.7.0 Too many connections; try again later\r\n")
            transport.close()
            return
        self._age_handle = self.loop.call_later(
            self.ctx.settings.limits.max_session_age, self._too_old
        )
        log.info("connection_open", client=self.client_ip, implicit_tls=self.implicit_tls)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._slot is None:
            return  # refused at connect: the library never set up this session
        if self._age_handle is not None:
            self._age_handle.cancel()
            self._age_handle = None
            self.ctx.limiter.release(self._slot)
            log.info("connection_closed", client=self.client_ip)
        super().connection_lost(error)

    def _reset_timeout(self, duration: float | None = None) -> None:
        # The library calls this at connect, after STARTTLS and for every valid command:
        # the connection is active now. Until login the idle timeout is short (LIM-7).
        now = self.loop.time()
        if self._slot is not None:
            self._slot.last_active = now
            if duration is None and not self._slot.logged_in:
                lim = self.ctx.settings.limits
                duration = min(lim.idle_timeout_before_login, lim.idle_timeout)
        # The deadline moves; the timer is re-armed only when it would fire after it. A
        # timer that fires before it finds the deadline moved and waits for what is left
        # (_timeout_cb), instead of a timer cancelled and made again for every command.
        self._idle_deadline = now + (duration or self._timeout_duration)
        armed = self._timeout_handle
        if armed is not None and not armed.cancelled() and armed.when() <= self._idle_deadline:
            return
        if armed is not None:
            armed.cancel()
        self._timeout_handle = self.loop.call_at(self._idle_deadline, self._timeout_cb)

    def _timeout_cb(self) -> None:
        if self.loop.time() < self._idle_deadline:  # a command came since it was armed
            self._timeout_handle = self.loop.call_at(self._idle_deadline, self._timeout_cb)
            return
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    def _evict(self) -> None:
        """Every slot is taken and this connection, not logged in, is the idlest (LIM-8)."""
        log.info("connection_evicted", client=self.client_ip)
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.write(
                b"421 4.7.0 All connections in use; closing this one, idle before login\r\n"
            )
            self.transport.close()

    def _too_old(self) -> None:
        log.info("session_too_old", client=self.client_ip)
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.write(b"421 4.4.2 Session lasted too long; closing\r\n")
            self.transport.close()

    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._cb_client_connected(reader, writer)
        guard_lines(reader, lambda: self._in_auth)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, BareLineFeed):
            log.warning("bare_lf_command", client=self.client_ip)
            self.loop.call_soon(self._close)
            return "521 5.5.2 Command lines must end with CRLF (RFC 5321 2.3.8); closing"
        if isinstance(error, LineTooLong):
            log.warning("line_too_long", client=self.client_ip, auth=error.auth)
            if error.auth:
                return "500 5.5.6 Authentication exchange line is too long (RFC 4954 6)"
            return "500 5.5.2 Command line too long (RFC 5321 4.5.3.1.4)"
        log.exception("smtp_session_error", client=self.client_ip, error=type(error).__name__)
        return "451 4.3.0 Local error; try again later"

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # MAIL FROM / RCPT TO: a plain path without the email package's parser.
        plain = plain_path(arg, self.local_part_limit)
        return plain if plain is not None else super()._getaddr(arg)

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            status = with_enhanced_code(status)
            if status[3:4] == "-":
                # A line of a multi-line reply (EHLO's eight): held for its last line and
                # sent with it, one write (one TLS record, one packet) instead of each.
                self._continued.append(status)
                return
            if self._continued:
                status = "\r\n".join([*self._continued, status])
                self._continued.clear()
        await super().push(status)

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

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """The library's DATA with the message read in blocks (:mod:`gateway.smtp.data`)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert isinstance(envelope, GatewayEnvelope)
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            blocks = await read_data(
                self._reader, size_limit=self.data_size_limit, line_limit=self.line_length_limit
            )
        except asyncio.CancelledError:
            self._writer.close()  # the connection ended during DATA
            raise
        if blocks is None:
            return
        if blocks.state is not DataState.NOMINAL:
            log.info("data_refused", client=self.client_ip, why=blocks.state.value)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            if blocks.state is DataState.TOO_LONG:
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await self.push("552 Error: Too much mail data")
            return
        envelope.received = blocks.content()
        # The handler refuses a message with bare CR, LF or NUL (counted as it arrived).
        envelope.unclean = blocks.unclean
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)


_COMMAND_NAMES = sorted(n for n in dir(GatewaySMTP) if n.startswith(("smtp_", "auth_")))
