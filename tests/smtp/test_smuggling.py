"""SMTP smuggling (reliability-tests.md §1): SMUG-1..14.

A message is accepted only when it ends at CRLF.CRLF and holds no bare CR, bare LF or NUL,
so no later hop can find a different end of data in what we relay.
"""

from __future__ import annotations

import pytest
from conftest import StartGateway
from support.harness import PASSWORD
from support.rawsmtp import authenticated
from support.upstream import Upstream

ALICE = "alice@c4f.example"
VARIANTS = [
    b"\n.\n",
    b"\r.\r",
    b"\r.\n",
    b"\n.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n\x00.\r\n",
    b"\r\n.\x00\r\n",
]
SMUGGLED = (
    b"MAIL FROM:<x@evil.example>\r\nRCPT TO:<ok@contact.example>\r\nDATA\r\n"
    b"From: ceo\r\n\r\nsmuggled\r\n.\r\n"
)


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"SMUG-{i}" for i in range(1, 11)])
async def test_smug_1_to_10_refused_with_one_reply(
    start_gateway: StartGateway, upstream: Upstream, variant: bytes
) -> None:
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@c4f.example>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(f"From: {ALICE}\r\nSubject: t\r\n\r\nbody".encode() + variant + SMUGGLED)
    reply = await c.reply()
    assert reply.startswith("550 5.6.0"), reply
    # Exactly one reply: the next command gets the next reply, nothing stray in between.
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    assert await c.silent()
    await c.close()
    assert gw.gateway.spool.rows() == []
    assert upstream.arrived == []


@pytest.mark.parametrize(
    "content",
    [
        b"From: alice@c4f.example\r\nSubject: a\rb\r\n\r\nbody\r\n",
        b"From: alice@c4f.example\nSubject: a\r\n\r\nbody\r\n",
        b"From: alice@c4f.example\r\n\r\nline one\nline two\r\n",
        b"From: alice@c4f.example\r\n\r\nline one\rline two\r\n",
        b"From: alice@c4f.example\r\n\r\nnul\x00byte\r\n",
    ],
    ids=["cr-in-header", "lf-in-header", "lf-in-body", "cr-in-body", "nul-in-body"],
)
async def test_smug_11_bare_cr_or_lf_anywhere_is_refused(
    start_gateway: StartGateway, content: bytes
) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    await c.cmd("RCPT TO:<bob@c4f.example>")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(content + b".\r\n")
    assert (await c.reply()).startswith("550 5.6.0")
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_smug_11_bare_lf_command_closes_session(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.send(f"MAIL FROM:<{ALICE}>\n".encode())
    assert (await c.reply()).startswith("521 5.5.2")
    assert await c.closed()


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"SMUG-12-{i}" for i in range(1, 11)])
async def test_smug_12_spooled_variants_leave_with_one_terminator(
    start_gateway: StartGateway, upstream: Upstream, variant: bytes
) -> None:
    """Bytes that reach the spool by another path still cannot end the message early."""
    gw = await start_gateway(upstream=upstream)
    content = b"From: alice@c4f.example\r\nSubject: t\r\n\r\nbody" + variant + SMUGGLED
    gw.gateway.spool.accept(
        queue_id="SMUG12TEST00",
        staff=ALICE,
        peer="127.0.0.1",
        mail_from=ALICE,
        rcpt_tos=["bob@c4f.example"],
        content=content,
    )
    gw.gateway.worker.wake()
    [arrived] = await upstream.wait_for(1)
    # The upstream saw one message that still holds the would-be second transaction as text.
    assert b"smuggled" in arrived.content
    assert b"MAIL FROM:<x@evil.example>" in arrived.content
    assert len(upstream.arrived) == 1
    assert upstream.transcript.count("DATA") == 1


async def test_smug_13_dot_lines_survive_byte_for_byte(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    body = b".\r\n..\r\n.x\r\n...\r\nlast line without newline"
    await gw.send(
        ALICE, ["bob@c4f.example"], f"From: {ALICE}\r\nSubject: d\r\n\r\n".encode() + body
    )
    [arrived] = await upstream.wait_for(1)
    # aiosmtplib adds the CRLF that must precede the terminator; nothing else changes.
    assert arrived.content.endswith(b"\r\n\r\n" + body + b"\r\n")


async def test_smug_14_pipelined_second_transaction_gets_its_own_replies(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    await c.cmd(f"MAIL FROM:<{ALICE}>")
    await c.cmd("RCPT TO:<bob@c4f.example>")
    await c.cmd("DATA")
    await c.send(
        f"From: {ALICE}\r\nSubject: one\r\n\r\nfirst\r\n.\r\n"
        f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<carol@c4f.example>\r\nDATA\r\n".encode()
    )
    replies = [await c.reply() for _ in range(4)]
    assert replies[0].startswith("250 2.0.0 Queued as ")
    assert replies[1] == "250 2.1.0 Sender OK"
    assert replies[2] == "250 2.1.5 Recipient OK"
    assert replies[3].startswith("354")
    await c.send(f"From: {ALICE}\r\nSubject: two\r\n\r\nsecond\r\n.\r\n".encode())
    assert (await c.reply()).startswith("250 2.0.0 Queued as ")
    assert await c.silent()
    await c.close()
    delivered = await gw.wait_maildir(2)
    assert sorted(b"first" in d for d in delivered) == [False, True]
    assert all(d.count(b"Subject:") == 1 for d in delivered)
