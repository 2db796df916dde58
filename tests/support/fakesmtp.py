"""A scripted smarthost: a small asyncio SMTP server whose every reply a test chooses.

aiosmtpd cannot answer STARTTLS with 454, drop the line at STARTTLS or after the final
dot, or put a forged reply in the same segment as its ``220 Ready`` (the EAST cases,
reliability-tests.md INJ-7 and TLS-1..6); this server can. It keeps every command line
it read, each marked with whether it came over TLS (``transcript``), and every message
it received (``messages``), so tests prove what was, and was not, sent in clear.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Script:
    greeting: str = "220 smarthost.test ESMTP fake"
    ehlo_reply: str = ""  # "" means 250 with the capabilities below; else sent as is
    starttls: bool = True  # offer STARTTLS before TLS
    starttls_reply: str | None = "220 2.0.0 Ready to start TLS"  # None: drop the line
    after_ready: bytes = b""  # sent in the same segment as the STARTTLS reply (EAST e)
    implicit: bool = False  # TLS from the first byte (RFC 8314)
    auth: tuple[str, str] | None = None  # AUTH PLAIN required with these credentials
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_replies: list[str] = field(default_factory=list)  # one per final dot, then 250
    final_delays: list[float] = field(default_factory=list)  # one per final dot, then 0
    drop_after_dot: int = 0  # this many transactions: the line dies after the dot


@dataclass(frozen=True)
class Line:
    text: str
    tls: bool

    @property
    def verb(self) -> str:
        return self.text.split(" ", 1)[0].split(":", 1)[0].upper()


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes  # after dot-unstuffing
    tls: bool
    answered: str  # the reply sent to the final dot ("" when the line was dropped)


class FakeSmarthost:
    """``await FakeSmarthost(tls).start()``; ``tls`` is the server context or None."""

    def __init__(self, tls: ssl.SSLContext | None, script: Script | None = None) -> None:
        self.tls = tls
        self.script = script or Script()
        self.transcript: list[Line] = []
        self.messages: list[Received] = []
        self.connections = 0
        self.resumed: list[bool] = []  # per TLS handshake: did it resume a session?
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @staticmethod
    def context(cert: Path, key: Path, *, max_tls11: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if max_tls11:
            # TLS-4: an outdated smarthost. OpenSSL 3 needs security level 0 to speak
            # TLS 1.0/1.1 at all; Python deprecates the names, which is the point here.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        return ctx

    async def start(self) -> FakeSmarthost:
        ssl_ctx = self.tls if self.script.implicit else None
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, ssl=ssl_ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def hang_up(self) -> None:
        """Every open session's line dies (as a smarthost drops idle connections); new
        connections are still accepted."""
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def __aenter__(self) -> FakeSmarthost:
        return self if self._server is not None else await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what tests read ---------------------------------------------------------------

    def verbs(self, *, tls: bool | None = None) -> list[str]:
        return [line.verb for line in self.transcript if tls is None or line.tls == tls]

    def delivered(self) -> list[Received]:
        """Messages whose final dot was answered 2xx."""
        return [m for m in self.messages if m.answered.startswith("2")]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        async def enough() -> None:
            while len(self.delivered()) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.delivered()

    # -- the session -------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self.connections += 1
        try:
            await _Session(self, reader, writer).run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels a session. Ending quietly keeps asyncio's streams
            # callback (Python 3.11) from logging the cancelled task as an error.
            return
        finally:
            self._sessions.discard(task)
            writer.transport.abort()
            self._changed.set()


class _Session:
    def __init__(
        self, fake: FakeSmarthost, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.fake = fake
        self.script = fake.script
        self.reader = reader
        self.writer = writer
        self.tls = fake.script.implicit
        self.authed = False
        self.mail_from: str | None = None
        self.rcpts: list[str] = []

    async def send(self, *lines: str, extra: bytes = b"") -> None:
        self.writer.write("".join(f"{line}\r\n" for line in lines).encode() + extra)
        await self.writer.drain()

    async def run(self) -> None:
        if self.tls:
            self._handshake_done()
        await self.send(self.script.greeting)
        while True:
            raw = await self.reader.readline()
            if not raw:
                return
            line = Line(raw.rstrip(b"\r\n").decode("utf-8", "replace"), self.tls)
            self.fake.transcript.append(line)
            self.fake._changed.set()
            handler = getattr(self, f"do_{line.verb.lower()}", None)
            if handler is None:
                await self.send("502 5.5.2 Command not recognised")
            elif await handler(line.text) is False:
                return

    async def do_ehlo(self, text: str) -> None:
        if self.script.ehlo_reply:
            await self.send(self.script.ehlo_reply)
            return
        caps = ["smarthost.test", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]
        if self.script.starttls and not self.tls:
            caps.append("STARTTLS")
        if self.script.auth:  # offered in clear too: a careless server; we must not use it
            caps.append("AUTH PLAIN")
        await self.send(*[f"250-{c}" for c in caps[:-1]], f"250 {caps[-1]}")

    async def do_starttls(self, text: str) -> bool:
        if self.tls:
            await self.send("554 5.5.1 TLS already active")
            return True
        reply = self.script.starttls_reply
        if reply is None:
            return False  # TLS-2: the line dies at STARTTLS
        await self.send(reply, extra=self.script.after_ready)
        if not reply.startswith("220"):
            return True
        assert self.fake.tls is not None
        await self.writer.start_tls(self.fake.tls)
        self._handshake_done()
        self.tls = True
        self.authed = False
        self.mail_from, self.rcpts = None, []
        return True

    def _handshake_done(self) -> None:
        ssl_object = self.writer.get_extra_info("ssl_object")
        self.fake.resumed.append(bool(ssl_object and ssl_object.session_reused))

    async def do_auth(self, text: str) -> None:
        words = text.split()
        if self.script.auth is None or len(words) != 3 or words[1].upper() != "PLAIN":
            await self.send("504 5.5.4 Unrecognised authentication type")
            return
        user, password = self.script.auth
        expected = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.authed = words[2] == expected
        await self.send("235 2.7.0 OK" if self.authed else "535 5.7.8 Bad credentials")

    async def do_mail(self, text: str) -> None:
        if self.script.auth and not self.authed:
            await self.send("530 5.7.0 Authentication required")
            return
        self.mail_from = _path(text)
        self.rcpts = []
        await self.send("250 2.1.0 OK" if self.mail_from is not None else "501 5.5.4 Syntax")

    async def do_rcpt(self, text: str) -> None:
        if self.mail_from is None:
            await self.send("503 5.5.1 MAIL first")
            return
        address = _path(text)
        if address is None:
            await self.send("501 5.5.4 Syntax")
            return
        reply = self.script.rcpt_replies.get(address, "250 2.1.5 OK")
        if reply.startswith("2"):
            self.rcpts.append(address)
        await self.send(reply)

    async def do_data(self, text: str) -> bool:
        if self.mail_from is None or not self.rcpts:
            await self.send("503 5.5.1 No valid recipients")
            return True
        await self.send("354 End data with <CR><LF>.<CR><LF>")
        lines = []
        while (raw := await self.reader.readline()) != b".\r\n":
            if not raw:
                return False
            lines.append(raw[1:] if raw.startswith(b".") else raw)  # RFC 5321 4.5.2
        content = b"".join(lines)
        script = self.script
        if script.drop_after_dot > 0:
            script.drop_after_dot -= 1  # TLS-6: the line dies before the reply
            self._keep(content, "")
            return False
        if script.final_delays:
            await asyncio.sleep(script.final_delays.pop(0))  # DUR-8
        reply = script.data_replies.pop(0) if script.data_replies else ""
        reply = reply or f"250 2.0.0 stored as M{len(self.fake.messages) + 1}"
        self._keep(content, reply)
        await self.send(reply)
        return True

    def _keep(self, content: bytes, answered: str) -> None:
        assert self.mail_from is not None
        self.fake.messages.append(
            Received(self.mail_from, list(self.rcpts), content, self.tls, answered)
        )
        self.mail_from, self.rcpts = None, []
        self.fake._changed.set()

    async def do_rset(self, text: str) -> None:
        self.mail_from, self.rcpts = None, []
        await self.send("250 2.0.0 OK")

    async def do_noop(self, text: str) -> None:
        await self.send("250 2.0.0 OK")

    async def do_quit(self, text: str) -> bool:
        await self.send("221 2.0.0 Bye")
        return False


def _path(text: str) -> str | None:
    """The address between the angle brackets of ``MAIL FROM:<a>`` or ``RCPT TO:<a> ...``."""
    start = text.find("<") + 1
    end = text.rfind(">")
    return text[start:end] if 0 < start <= end else None
