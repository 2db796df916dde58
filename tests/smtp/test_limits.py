"""Header injection, limits and slow clients (reliability-tests.md §3): HDR-1, HDR-2, LIM-1..6,
and the relay-core part of REL-3 (the address that leaves is the address that was given)."""

from __future__ import annotations

import asyncio
import email
from email.policy import default

import pytest
from conftest import StartGateway
from support.harness import PASSWORD
from support.rawsmtp import RawSMTP, authenticated
from support.upstream import Upstream

ALICE = "alice@c4f.example"


async def _greeted(port: int, local: str = "127.0.0.1") -> RawSMTP:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    c = RawSMTP(reader, writer)
    assert (await c.reply()).startswith("220")
    return c


@pytest.mark.parametrize(
    "name", ["bad\rname", "bad\x00name", "x" * 256, "two words"], ids=["cr", "nul", "long", "space"]
)
async def test_hdr_1_bad_ehlo_names_are_refused(start_gateway: StartGateway, name: str) -> None:
    gw = await start_gateway()
    c = await _greeted(gw.port)
    await c.send(b"EHLO " + name.encode() + b"\r\n")
    reply = await c.reply()
    assert reply.startswith("501"), reply
    await c.close()


async def test_hdr_1_quoted_cr_in_addresses_is_refused(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.send(b'MAIL FROM:<"ali\rce"@c4f.example>\r\n')
    assert (await c.reply()).startswith("553")
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    await c.send(b'RCPT TO:<"b\rc"@y.example>\r\n')
    assert (await c.reply()).startswith("553 5.1.3")
    await c.close()


async def test_hdr_2_encoded_newline_in_subject_adds_no_header(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    original = (
        f"From: {ALICE}\r\nTo: bob@c4f.example\r\n"
        "Subject: =?UTF-8?Q?x=0ABcc:_evil@x?=\r\n\r\nbody\r\n"
    ).encode()
    await gw.send(ALICE, ["bob@c4f.example"], original)
    [arrived] = await upstream.wait_for(1)
    before = email.message_from_bytes(original, policy=default)
    after = email.message_from_bytes(arrived.content, policy=default)
    assert [k for k in after.keys() if k != "Received"] == list(before.keys())  # noqa: SIM118
    assert "Bcc" not in after
    assert arrived.content.endswith(original)


async def test_bcc_is_removed_and_received_added(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    original = (
        f"From: {ALICE}\r\nTo: bob@c4f.example\r\nBcc: carol@c4f.example,\r\n dave@c4f.example\r\n"
        "Subject: s\r\n\r\nbody\r\n"
    ).encode()
    await gw.send(ALICE, ["bob@c4f.example", "carol@c4f.example"], original)
    [arrived] = await upstream.wait_for(1)
    assert b"Bcc" not in arrived.content and b"dave" not in arrived.content
    assert arrived.content.startswith(b"Received: from ")
    assert arrived.content.endswith(b"To: bob@c4f.example\r\nSubject: s\r\n\r\nbody\r\n")
    assert sorted(arrived.rcpt_tos) == ["bob@c4f.example", "carol@c4f.example"]


REL_3_FORMS = [
    "ok%evil.example@contact.example",
    "evil.example!ok@contact.example",
    "OK@CONTACT.EXAMPLE",
    "ok@[192.0.2.1]",
    '"ok@contact.example"@evil.example',
]


async def test_rel_3_address_leaves_exactly_as_given(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    """The core never rewrites an address: what a recipient filter compared is what is sent."""
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    accepted = []
    for addr in REL_3_FORMS:
        if (await c.cmd(f"RCPT TO:<{addr}>")).startswith("250"):
            accepted.append(addr)
    # aiosmtpd strips the source route (RFC 5321 3.6.1): what is kept is the real mailbox,
    # and that is what leaves (the contacts filter, not the core, refuses it).
    assert await c.cmd("RCPT TO:<@contact.example:ok@evil.example>") == "250 2.1.5 Recipient OK"
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(f"From: {ALICE}\r\nSubject: r\r\n\r\nx\r\n.\r\n".encode())
    assert (await c.reply()).startswith("250")
    await c.close()
    [arrived] = await upstream.wait_for(1)
    assert set(accepted) <= set(arrived.rcpt_tos)
    assert sorted(arrived.rcpt_tos) == sorted([*accepted, "ok@evil.example"])


async def test_lim_1_size_parameter_over_limit(start_gateway: StartGateway) -> None:
    gw = await start_gateway(config={"limits": {"max_message_size": 10_000}})
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    assert (await c.cmd(f"MAIL FROM:<{ALICE}> SIZE=10001")).startswith("552 5.3.4")
    assert (await c.cmd(f"MAIL FROM:<{ALICE}> SIZE=9000")).startswith("250")
    await c.close()


async def test_lim_1_oversize_body_refused_after_dot(start_gateway: StartGateway) -> None:
    gw = await start_gateway(config={"limits": {"max_message_size": 10_000}})
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    await c.cmd("RCPT TO:<bob@c4f.example>")
    await c.cmd("DATA")
    await c.send(f"From: {ALICE}\r\n\r\n".encode() + b"x" * 70 + b"\r\n")
    await c.send((b"y" * 78 + b"\r\n") * 200 + b".\r\n")
    assert (await c.reply()).startswith("552 5.3.4")
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_lim_2_long_line_and_huge_header(start_gateway: StartGateway) -> None:
    """aiosmtpd refuses a line over 1,001 octets with 500 (RFC 5321 4.5.3.1.6)."""
    gw = await start_gateway(config={"limits": {"max_message_size": 200_000}})
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    await c.cmd("RCPT TO:<bob@c4f.example>")
    await c.cmd("DATA")
    await c.send(f"From: {ALICE}\r\n\r\n".encode() + b"z" * 1200 + b"\r\n.\r\n")
    assert (await c.reply()).startswith("500 5.5.2")
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    await c.cmd("RCPT TO:<bob@c4f.example>")
    await c.cmd("DATA")
    folded = b"X-Big: start\r\n" + b" continued header line of some length\r\n" * 10_000
    await c.send(f"From: {ALICE}\r\n".encode() + folded + b"\r\nbody\r\n.\r\n")
    assert (await c.reply()).startswith("552 5.3.4")
    await c.close()


async def test_lim_3_recipient_limit(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    for i in range(100):
        assert (await c.cmd(f"RCPT TO:<r{i}@c4f.example>")).startswith("250")
    assert (await c.cmd("RCPT TO:<r100@c4f.example>")).startswith("452 4.5.3")
    assert (await c.cmd("RCPT TO:<r101@c4f.example>")).startswith("452 4.5.3")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(f"From: {ALICE}\r\n\r\nx\r\n.\r\n".encode())
    assert (await c.reply()).startswith("250")
    await c.close()
    [delivered] = await gw.wait_maildir(1)
    rcpts = delivered.split(b"\r\n")[1].removeprefix(b"Delivered-To: ").split(b", ")
    assert len(rcpts) == 100 and b"r100@c4f.example" not in rcpts


async def test_lim_4_silence_and_trickle_are_cut_off(start_gateway: StartGateway) -> None:
    gw = await start_gateway(config={"limits": {"idle_timeout": 0.5}})
    gw.add_staff(ALICE)
    silent = await _greeted(gw.port)
    assert await silent.closed(5)
    trickle = await _greeted(gw.port)
    for ch in b"NOOP":
        await trickle.send(bytes([ch]))
        await asyncio.sleep(0.2)
    assert await trickle.closed(5)  # only whole commands reset the idle timer
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    await c.cmd("RCPT TO:<bob@c4f.example>")
    await c.cmd("DATA")
    closed = False
    for _ in range(20):
        try:
            await c.send(b"slow line\r\n")
        except ConnectionError:
            closed = True
            break
        await asyncio.sleep(0.2)
    assert closed or await c.closed(5)
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_lim_4_noop_loop_and_session_age(start_gateway: StartGateway) -> None:
    gw = await start_gateway(config={"limits": {"max_noops": 5, "max_session_age": 1.5}})
    c = await _greeted(gw.port)
    for _ in range(5):
        assert (await c.cmd("NOOP")).startswith("250")
    assert (await c.cmd("NOOP")).startswith("421 4.7.0")
    assert await c.closed()
    old = await _greeted(gw.port)
    for _ in range(3):
        await asyncio.sleep(0.4)
        await old.cmd("EHLO client.test")
    assert (await old.reply(5)).startswith("421 4.4.2")
    assert await old.closed()


async def test_lim_5_connection_limit_per_client(start_gateway: StartGateway) -> None:
    gw = await start_gateway(
        config={"limits": {"max_connections_per_client": 20, "max_connections": 50}}
    )
    sessions = [await RawSMTP.connect(gw.port) for _ in range(30)]
    greetings = [await s.reply() for s in sessions]
    assert sum(g.startswith("220") for g in greetings) == 20
    assert sum(g.startswith("421 4.7.0") for g in greetings) == 10
    # Another client address is still served while this one is at its limit.
    other = await _greeted(gw.port, local="127.0.0.2")
    assert (await other.cmd("EHLO other.test")).startswith("250")
    await other.close()
    for s in sessions:
        await s.close()


async def test_lim_6_many_commands_in_one_segment(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    batch = [f"MAIL FROM:<{ALICE}>"] + [f"RCPT TO:<r{i}@c4f.example>" for i in range(48)] + ["RSET"]
    await c.send("".join(x + "\r\n" for x in batch).encode())
    replies = [await c.reply() for _ in batch]
    assert replies[0] == "250 2.1.0 Sender OK"
    assert replies[1:49] == ["250 2.1.5 Recipient OK"] * 48
    assert replies[49] == "250 2.0.0 OK"
    assert await c.silent()
    # DATA and content sent before the 354: still one reply per command, in order.
    await c.send(
        f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<bob@c4f.example>\r\nDATA\r\n"
        f"From: {ALICE}\r\n\r\nearly\r\n.\r\n".encode()
    )
    replies = [await c.reply() for _ in range(4)]
    assert [r[:3] for r in replies] == ["250", "250", "354", "250"]
    assert await c.silent()
    await c.close()


async def test_lim_4_each_command_moves_the_idle_deadline_and_silence_still_ends_it(
    start_gateway: StartGateway,
) -> None:
    """The idle timeout counts from the last command: a session busy for three timeouts
    stays open, one quiet for less than a timeout after its last command too, and one
    quiet for longer is closed (RFC 5321 4.5.3.2)."""
    gw = await start_gateway(config={"limits": {"idle_timeout": 0.6}})
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    for _ in range(9):  # 1.8 s of commands 0.2 s apart
        await asyncio.sleep(0.2)
        assert (await c.cmd("NOOP")).startswith("250")
    await asyncio.sleep(0.4)  # less than the timeout since the last command
    assert (await c.cmd("NOOP")).startswith("250")
    assert await c.closed(3)  # then silence
