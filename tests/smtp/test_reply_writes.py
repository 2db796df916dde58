"""A multi-line reply goes out in one write: EHLO's lines in one TLS record, not one each.

The client here reads the raw TLS records off the socket and opens them one at a time
(``ssl.MemoryBIO``), so the test sees how the gateway wrote the reply, not only what it
said.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from conftest import StartGateway


async def _line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 10)


async def _records(
    reader: asyncio.StreamReader, until: bytes, tls: ssl.SSLObject, incoming: ssl.MemoryBIO
) -> list[bytes]:
    """The plaintext of each TLS record received, one by one, until ``until`` is read."""
    raw, texts = b"", []
    while not texts or until not in b"".join(texts):
        raw += await asyncio.wait_for(reader.read(65536), 10)
        while len(raw) >= 5 and len(raw) >= 5 + int.from_bytes(raw[3:5], "big"):
            end = 5 + int.from_bytes(raw[3:5], "big")
            incoming.write(raw[:end])
            raw = raw[end:]
            text = b""
            while True:
                try:
                    text += tls.read(65536)
                except ssl.SSLWantReadError:
                    break
            if text:  # a session ticket opens to nothing
                texts.append(text)
    return texts


async def test_ehlo_reply_lines_go_out_in_one_tls_record(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        assert (await _line(reader)).startswith(b"220 ")
        writer.write(b"STARTTLS\r\n")
        assert (await _line(reader)).startswith(b"220 ")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = gw.client_tls().wrap_bio(incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
                incoming.write(await asyncio.wait_for(reader.read(65536), 10))
        tls.write(b"EHLO client.test\r\n")
        writer.write(outgoing.read())
        texts = await _records(reader, b"\r\n250 ", tls, incoming)
        [reply] = texts
        lines = reply.split(b"\r\n")
        assert lines[-1] == b"" and len(lines) > 4, reply
        assert all(line.startswith(b"250-") for line in lines[:-2]), reply
        assert lines[-2].startswith(b"250 "), reply
        assert b"250-AUTH LOGIN PLAIN" in reply
    finally:
        writer.close()


def _starttls_session(
    port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[ssl.SSLSession | None, bool]:
    """One STARTTLS session up to EHLO's reply and QUIT: (its TLS session, resumed?)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        reply = raw.makefile("rb")
        assert reply.readline().startswith(b"220 ")
        raw.sendall(b"EHLO client.test\r\n")
        while not reply.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\n")
        assert reply.readline().startswith(b"220 ")
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"EHLO client.test\r\n")
            lines = tls.makefile("rb")
            while not lines.readline().startswith(b"250 "):
                pass
            tls.sendall(b"QUIT\r\n")
            assert lines.readline().startswith(b"221 ")
            return tls.session, bool(tls.session_reused)


async def test_one_session_ticket_per_handshake_and_the_next_connection_resumes(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    ctx = gw.client_tls()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    seen: list[object] = []

    def watch(
        _conn: object, direction: str, _v: object, _ct: object, kind: object, _d: bytes
    ) -> None:
        if direction == "read" and kind == ssl._TLSMessageType.NEWSESSION_TICKET:  # type: ignore[attr-defined]
            seen.append(kind)

    ctx._msg_callback = watch  # type: ignore[attr-defined]
    session, resumed = await asyncio.to_thread(_starttls_session, gw.port, ctx)
    assert (len(seen), resumed) == (1, False)
    _session, resumed = await asyncio.to_thread(_starttls_session, gw.port, ctx, session)
    assert resumed
