"""Sender binding (reliability-tests.md §3): SPF-1, SPF-2, and aliases."""

from __future__ import annotations

import pytest
from conftest import StartGateway
from support.harness import PASSWORD
from support.rawsmtp import RawSMTP, authenticated

ALICE = "alice@c4f.example"


async def _send_raw(c: RawSMTP, header: bytes, mail_from: str = ALICE) -> str:
    assert (await c.cmd(f"MAIL FROM:<{mail_from}>")).startswith("250")
    assert (await c.cmd("RCPT TO:<bob@c4f.example>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    await c.send(header + b"Subject: s\r\n\r\nbody\r\n.\r\n")
    return await c.reply()


async def test_spf_1_mail_from_must_be_owned(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    reply = await c.cmd("MAIL FROM:<director@c4f.example>")
    assert reply.startswith("553 5.7.1")
    assert "not owned by user alice@c4f.example" in reply
    assert (await c.cmd("MAIL FROM:<>")).startswith("553 5.7.1")
    assert (await c.cmd("MAIL FROM:<ALICE@C4F.EXAMPLE>")).startswith("250")  # case-insensitive
    await c.close()


async def test_spf_1_from_header_must_be_owned(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    reply = await _send_raw(c, b"From: Director <director@c4f.example>\r\n")
    assert reply.startswith("550 5.7.1")
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_alias_may_be_used(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE, aliases=["referrals@c4f.example"])
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    reply = await _send_raw(
        c, b"From: Referrals <referrals@c4f.example>\r\n", mail_from="referrals@c4f.example"
    )
    assert reply.startswith("250 2.0.0 Queued")
    await c.close()


SPF_2 = {
    "two-from-fields": b"From: alice@c4f.example\r\nFrom: alice@c4f.example\r\n",
    "two-mailboxes": b"From: alice@c4f.example, x@evil.example\r\n",
    "encoded-word-plus-second": b"From: =?utf-8?q?alice=40c4f=2Eexample?= <x@evil.example>\r\n",
    "source-route": b"From: <@evil.example:alice@c4f.example>\r\n",
    "escaped-comma": b"From: <alice@c4f.example>\\,<x@evil.example>\r\n",
    "quoted-name-looks-like-address": b'From: "alice@c4f.example" <x@evil.example>\r\n',
    "folded-name": b"From\r\n :alice@c4f.example\r\n",
    "leading-space": b" From: alice@c4f.example\r\nTo: bob@c4f.example\r\n",
    "space-before-colon": b"From : alice@c4f.example\r\n",
    "differing-sender": b"From: alice@c4f.example\r\nSender: x@evil.example\r\n",
    "differing-resent-from": b"From: alice@c4f.example\r\nResent-From: x@evil.example\r\n",
    "cve-2023-27043-paren": b"From: alice@c4f.example)<x@evil.example>\r\n",
    "cve-2023-27043-double-at": b"From: alice@c4f.example@<x@evil.example>\r\n",
    "no-from": b"To: bob@c4f.example\r\n",
    "group-syntax": b"From: friends: alice@c4f.example, x@evil.example;\r\n",
}


@pytest.mark.parametrize("header", list(SPF_2.values()), ids=list(SPF_2))
async def test_spf_2_ambiguous_from_is_refused(start_gateway: StartGateway, header: bytes) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    reply = await _send_raw(c, header)
    # 550 5.7.1 for sender problems; a header the gateway cannot even split is 554 5.6.0.
    assert reply.startswith(("550 5.7.1", "554 5.6.0")), reply
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_spf_2_nul_in_from_is_refused(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    reply = await _send_raw(c, b"From: alice@c4f.example\x00x@evil.example\r\n")
    assert reply.startswith(("550", "554"))
    await c.close()


async def test_plain_from_with_display_name_is_accepted(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    reply = await _send_raw(c, b'From: "Alice Smith (Contact Worker)" <alice@c4f.example>\r\n')
    assert reply.startswith("250 2.0.0 Queued")
    await c.close()
