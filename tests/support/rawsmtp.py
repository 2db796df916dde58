"""A byte-level SMTP client for attack tests: it sends exactly the bytes it is given."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl


class RawSMTP:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> RawSMTP:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname="localhost" if tls else None
        )
        client = cls(reader, writer)
        return client

    async def reply(self, timeout: float = 10.0) -> str:
        """One whole reply (all its lines), as text; '' when the server closed."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                return "\n".join(lines)
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def cmd(self, line: str) -> str:
        await self.send(line.encode() + b"\r\n")
        return await self.reply()

    async def starttls(self, ctx: ssl.SSLContext) -> None:
        await self.writer.start_tls(ctx, server_hostname="localhost")

    async def login(self, login: str, password: str) -> str:
        token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        return await self.cmd(f"AUTH PLAIN {token}")

    async def silent(self, seconds: float = 0.3) -> bool:
        """True when the server sends nothing more for ``seconds`` (no stray replies)."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), seconds)
        except TimeoutError:
            return True
        return data == b""

    async def closed(self, timeout: float = 5.0) -> bool:
        """True when the server has closed the connection (EOF) within ``timeout``.

        The client side is closed too, then.
        """
        try:
            data = await asyncio.wait_for(self.reader.read(1), timeout)
        except (TimeoutError, ConnectionResetError):
            return False
        if data == b"":
            await self.close()
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def authenticated(port: int, tls: ssl.SSLContext, login: str, password: str) -> RawSMTP:
    """EHLO, STARTTLS, EHLO, AUTH PLAIN: a session ready for MAIL."""
    c = await RawSMTP.connect(port)
    assert (await c.reply()).startswith("220")
    assert (await c.cmd("EHLO client.test")).startswith("250")
    assert (await c.cmd("STARTTLS")).startswith("220")
    await c.starttls(tls)
    assert (await c.cmd("EHLO client.test")).startswith("250")
    reply = await c.login(login, password)
    assert reply.startswith("235"), reply
    return c
