"""Kept connections to the smarthost: several messages per verified TLS connection.

Postfix's connection cache, for our one smarthost. A connection on which a message went
through cleanly (whatever the upstream answered) is parked; the next delivery takes the
most recently parked one and sends RSET first (RFC 5321 4.1.1.5), which also proves the
line is still alive: one that fails it is closed and the next is tried, then a new one
opened, so a connection the upstream dropped while idle costs no delivery attempt. A
connection that has carried ``pool_max_messages`` messages, or stayed unused for
``pool_idle_seconds``, is closed with QUIT. A connection on which anything went wrong (an
exception, a timeout, a reply out of step, the line lost) is closed at once and never
parked: the delivery worker decides what happens to that message.

Each connection keeps the TLS it was opened with (verified then, against
``upstream.tls_name``); the register's evidence is read from it for every message.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiosmtplib
import structlog

log = structlog.get_logger("gateway.delivery")


@dataclass(eq=False)
class Kept:
    """One open, verified, logged-in connection and how many messages it has carried."""

    client: aiosmtplib.SMTP
    messages: int = 0
    timer: asyncio.TimerHandle | None = None


class ConnectionPool:
    """The idle connections to one smarthost (at most one per concurrent delivery).

    ``idle_seconds = 0`` keeps nothing: each connection carries one message, then QUIT.
    """

    def __init__(self, idle_seconds: float, max_messages: int, command_timeout: float) -> None:
        self.idle_seconds = idle_seconds
        self.max_messages = max_messages
        self.command_timeout = command_timeout
        self._idle: list[Kept] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def take(self) -> Kept | None:
        """A parked connection that answered RSET with 250, or None (open a new one)."""
        while self._idle:
            kept = self._idle.pop()
            if kept.timer is not None:
                kept.timer.cancel()
                kept.timer = None
            if not kept.client.is_connected:
                self.discard(kept)
                continue
            try:
                await kept.client.rset(timeout=self.command_timeout)
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.info("upstream_connection_stale", error=type(exc).__name__)
                self.discard(kept)
                continue
            except BaseException:
                self.discard(kept)
                raise
            return kept
        return None

    def give_back(self, kept: Kept) -> None:
        """After a transaction that ended cleanly: park it, or QUIT it when it is done."""
        kept.messages += 1
        if (
            self._closed
            or self.idle_seconds <= 0
            or kept.messages >= self.max_messages
            or not kept.client.is_connected
        ):
            self._retire(kept)
            return
        kept.timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._expire, kept)
        self._idle.append(kept)

    def discard(self, kept: Kept) -> None:
        """Something went wrong on it: close the line now, without another command."""
        if kept.timer is not None:
            kept.timer.cancel()
        kept.client.close()

    async def close(self) -> None:
        """QUIT every parked connection and wait for the QUITs (at stop)."""
        self._closed = True
        while self._idle:
            kept = self._idle.pop()
            if kept.timer is not None:
                kept.timer.cancel()
            self._retire(kept)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _expire(self, kept: Kept) -> None:
        if kept in self._idle:
            self._idle.remove(kept)
            kept.timer = None
            self._retire(kept)

    def _retire(self, kept: Kept) -> None:
        task = asyncio.create_task(self._quit(kept.client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        try:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit(timeout=min(self.command_timeout, 5.0))
        finally:
            client.close()
