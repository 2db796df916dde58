"""A multi-line reply goes out in one write: EHLO's lines in one TLS record, not one each.

The client here reads the raw TLS records off the socket and opens them one at a time
(``ssl.MemoryBIO``), so the test sees how the gateway wrote the reply, not only what it
said.
"""

from __future__ import annotations

import asyncio
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
