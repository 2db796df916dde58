"""DATA read in blocks, through a real session: the end of data in separate TLS writes,
a large message with dot-stuffed lines everywhere, the size limit crossed in the middle of
what arrives, and commands pipelined after the final dot (gateway.smtp.data)."""

from __future__ import annotations

import asyncio

from conftest import StartGateway
from support.harness import PASSWORD
from support.rawsmtp import RawSMTP, authenticated

ALICE = "alice@c4f.example"
END = b"\r\n.\r\n"


async def _transaction(c: RawSMTP) -> None:
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@c4f.example>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")


async def test_end_of_data_split_across_writes(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    bodies = []
    for cut in range(len(END)):  # the last write holds at least the final LF
        body = f"From: {ALICE}\r\nSubject: cut {cut}\r\n\r\n.cut at {cut}".encode()
        bodies.append(f"From: {ALICE}\r\nSubject: cut {cut}\r\n\r\ncut at {cut}\r\n".encode())
        await _transaction(c)
        await c.send(body + END[:cut])
        await asyncio.sleep(0.05)  # a separate TLS record, read on its own
        assert await c.silent(0.05)  # no reply before the end of data
        await c.send(END[cut:] + b"NOOP\r\n")  # a command pipelined after the dot
        assert (await c.reply()).startswith("250 2.0.0 Queued as "), cut
        assert await c.reply() == "250 2.0.0 OK"
    assert await c.silent()
    await c.close()
    delivered = await gw.wait_maildir(len(bodies))
    assert sorted(next(d for d in delivered if d.endswith(b)) for b in bodies) == sorted(delivered)


async def test_large_message_with_dot_lines_arrives_byte_for_byte(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(config={"limits": {"max_message_size": 4_000_000}})
    gw.add_staff(ALICE)
    # 3 MB of lines of every length up to 997 octets, a third of them starting with dots:
    # dot-stuffed lines fall on every kind of chunk and TLS record edge.
    lines = [(b"." * (i % 3) + b"%d " % i).ljust(i % 998, b"q") for i in range(6000)]
    body = b"\r\n".join(lines) + b"\r\n"
    stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines) + b"\r\n"
    head = f"From: {ALICE}\r\nSubject: big\r\n\r\n".encode()
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await _transaction(c)
    await c.send(head + stuffed + b".\r\n")
    assert (await c.reply(30)).startswith("250 2.0.0 Queued as ")
    await c.close()
    [delivered] = await gw.wait_maildir(1, timeout=30)
    assert delivered.endswith(head + body)


async def test_size_limit_crossed_mid_write_then_pipelined_command(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(config={"limits": {"max_message_size": 100_000}})
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await _transaction(c)
    big = f"From: {ALICE}\r\n\r\n".encode() + (b"y" * 98 + b"\r\n") * 3000
    await c.send(big + b".\r\nNOOP\r\n")  # 300 KB in one write, then the next command
    assert (await c.reply()).startswith("552 5.3.4")
    assert await c.reply() == "250 2.0.0 OK"
    # The session goes on: the next message is read from its first byte.
    await _transaction(c)
    await c.send(f"From: {ALICE}\r\n\r\nsmall\r\n.\r\n".encode())
    assert (await c.reply()).startswith("250 2.0.0 Queued as ")
    await c.close()
    [delivered] = await gw.wait_maildir(1)
    assert delivered.endswith(b"\r\n\r\nsmall\r\n")


async def test_long_line_refused_and_session_goes_on(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await _transaction(c)
    await c.send(f"From: {ALICE}\r\n\r\n".encode() + b"z" * 300_000 + b"\r\n.\r\nNOOP\r\n")
    assert (await c.reply()).startswith("500 5.5.2")
    assert await c.reply() == "250 2.0.0 OK"
    assert await c.silent()
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_received_is_added_to_a_message_all_header_or_without_header(
    start_gateway: StartGateway,
) -> None:
    """The header is split apart from the body without copying the body: a message that
    is all header keeps every byte, Bcc: still goes, and one that starts with its blank
    line is judged (no From:), not failed (451)."""
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    head_only = f"From: {ALICE}\r\nX-Only: header\r\n".encode()
    with_bcc = f"From: {ALICE}\r\nBcc: x@c4f.example\r\n\r\nb\r\n".encode()
    for content in (head_only, with_bcc):
        await _transaction(c)
        await c.send(content + b".\r\n")
        assert (await c.reply()).startswith("250 2.0.0 Queued as ")
    await _transaction(c)
    await c.send(b"\r\nbody only\r\n.\r\n")
    assert (await c.reply())[:1] == "5"
    await c.close()
    delivered = await gw.wait_maildir(2)
    [kept] = [d for d in delivered if d.endswith(head_only + b"\r\n")]
    [other] = [d for d in delivered if d is not kept]
    assert other.endswith(f"\r\nFrom: {ALICE}\r\n\r\nb\r\n".encode())
    assert b"Bcc:" not in other and b"Received: " in kept and b"Received: " in other
