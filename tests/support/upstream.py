"""A real upstream SMTP server (aiosmtpd) that records what arrives, byte for byte.

It stands in for the organisation's smarthost: STARTTLS with a certificate from the test
CA (or no STARTTLS, or implicit TLS), and scripted replies to RCPT and DATA so tests can
make it defer (4xx) or refuse (5xx). ``transcript`` holds every command line it read,
which is how tests prove that nothing was sent in clear.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass
class Arrived:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes  # exactly the bytes after dot-unstuffing
    tls: bool


@dataclass
class UpstreamBehaviour:
    starttls: bool = True  # offer STARTTLS (ignored when implicit)
    implicit: bool = False
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_replies: list[str] = field(default_factory=list)  # consumed one per DATA; then 250
    data_delay: float = 0.0


class _Recorder:
    def __init__(self, upstream: Upstream) -> None:
        self.up = upstream

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.up.behaviour.rcpt_replies.get(address)
        if reply and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.up.behaviour.data_delay:
            await asyncio.sleep(self.up.behaviour.data_delay)
        if self.up.behaviour.data_replies:
            reply = self.up.behaviour.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.up.arrived.append(
            Arrived(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                session.ssl is not None or self.up.behaviour.implicit,
            )
        )
        self.up.event.set()
        return "250 2.0.0 stored"


class _RecordingSMTP(SMTP):
    def __init__(self, upstream: Upstream, **kw: Any) -> None:
        super().__init__(_Recorder(upstream), hostname="upstream.test", **kw)
        self.upstream = upstream

    def _cb_client_connected(self, reader: asyncio.StreamReader, writer: Any) -> None:
        super()._cb_client_connected(reader, writer)
        original = reader.readuntil
        transcript = self.upstream.transcript

        async def readuntil(separator: Any = b"\n") -> bytes:
            line = await original(separator)
            if separator == b"\n":
                transcript.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
            return line

        reader.readuntil = readuntil  # type: ignore[method-assign]


class Upstream:
    def __init__(self, cert: Any, behaviour: UpstreamBehaviour | None = None) -> None:
        self.behaviour = behaviour or UpstreamBehaviour()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        self.arrived: list[Arrived] = []
        self.transcript: list[str] = []
        self.event = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Upstream:
        b = self.behaviour
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            return _RecordingSMTP(
                self,
                tls_context=self.ctx if (b.starttls and not b.implicit) else None,
                require_starttls=False,
                timeout=30,
            )

        self._server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=self.ctx if b.implicit else None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Arrived]:
        async def enough() -> None:
            while len(self.arrived) < count:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.arrived

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
