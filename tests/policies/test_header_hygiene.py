"""Header hygiene over SMTP, through a running gateway (HDR-3 .. HDR-7).

- HDR-3: ``Resent-Bcc`` is removed as ``Bcc`` is (RFC 5322 3.6.6): checked on the bytes the
  upstream receives.
- HDR-4: ``Resent-From`` and ``Resent-Sender`` are bound to the staff member like ``From``
  and ``Sender``.
- HDR-5: a second ``Subject`` (or any field RFC 5322 3.6 allows once) is refused: two
  readers may show different ones.
- HDR-6: group syntax in an originator field is refused.
- HDR-7: a display name that spells another address is refused, confusable ``@`` included.

Every refusal is a 5xx before 250 and nothing reaches the upstream: a clean message sent
after the refused ones is the only one that arrives.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from conftest import StartGateway
from support.harness import PASSWORD, RunningGateway
from support.rawsmtp import authenticated
from support.upstream import Upstream

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"
BODY = b"\r\nbody\r\n"


def word(text: str) -> str:
    """``text`` as an RFC 2047 encoded word, as a mail client writes a non-ASCII name."""
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


async def submit(gw: RunningGateway, header: bytes, rcpts: tuple[str, ...] = (BOB,)) -> str:
    """Send ``header`` + a body from Alice; the reply to the end of DATA."""
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    try:
        assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
        for rcpt in rcpts:
            assert (await c.cmd(f"RCPT TO:<{rcpt}>")).startswith("250")
        assert (await c.cmd("DATA")).startswith("354")
        await c.send(header + BODY + b".\r\n")
        return await c.reply()
    finally:
        await c.close()


async def nothing_but_a_clean_message_arrives(gw: RunningGateway, upstream: Upstream) -> None:
    reply = await submit(gw, f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: clean\r\n".encode())
    assert reply.startswith("250 2.0.0 Queued"), reply
    [only] = await upstream.wait_for(1)
    await asyncio.sleep(0.3)  # a refused message would have been delivered by now
    assert len(upstream.arrived) == 1
    assert b"Subject: clean\r\n" in only.content


@pytest.fixture
async def gw(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    running = await start_gateway(upstream=upstream)
    running.add_staff(ALICE, aliases=["referrals@c4f.example"])
    return running


# -- HDR-3 ---------------------------------------------------------------------------------


async def test_hdr3_resent_bcc_is_removed(gw: RunningGateway, upstream: Upstream) -> None:
    kept = (
        f"Resent-From: {ALICE}\r\nResent-To: {BOB}\r\nFrom: {ALICE}\r\nTo: {BOB}\r\n"
        "Subject: forwarded\r\n"
    ).encode()
    header = (
        f"Resent-From: {ALICE}\r\nResent-To: {BOB}\r\n"
        "Resent-Bcc: carol@c4f.example,\r\n dave@c4f.example\r\n"
        f"From: {ALICE}\r\nTo: {BOB}\r\nRESENT-BCC: erin@c4f.example\r\nSubject: forwarded\r\n"
    ).encode()
    reply = await submit(gw, header, (BOB, "carol@c4f.example"))
    assert reply.startswith("250 2.0.0 Queued"), reply
    [arrived] = await upstream.wait_for(1)
    assert b"resent-bcc" not in arrived.content.lower()
    assert b"carol" not in arrived.content and b"dave" not in arrived.content
    assert b"erin" not in arrived.content
    # Only the Received: field is added in front; everything else is byte-equal.
    assert arrived.content.startswith(b"Received: from ")
    assert arrived.content.endswith(kept + BODY)
    assert sorted(arrived.rcpt_tos) == [BOB, "carol@c4f.example"]


# -- HDR-4 ---------------------------------------------------------------------------------

HDR_4 = {
    "resent-sender": b"Resent-Sender: x@evil.example\r\n",
    "resent-sender, display name": b"Resent-Sender: Alice <x@evil.example>\r\n",
    "resent-sender, second of two": (
        f"Resent-Sender: {ALICE}\r\nResent-Sender: x@evil.example\r\n".encode()
    ),
    "resent-sender, two mailboxes": f"Resent-Sender: {ALICE}, x@evil.example\r\n".encode(),
    "resent-from": b"Resent-From: x@evil.example\r\n",
}


@pytest.mark.parametrize("resent", list(HDR_4.values()), ids=list(HDR_4))
async def test_hdr4_resent_originator_must_be_the_staff_member(
    gw: RunningGateway, upstream: Upstream, resent: bytes
) -> None:
    header = resent + f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: s\r\n".encode()
    reply = await submit(gw, header)
    assert reply.startswith("550 5.7.1 Resent-"), reply
    await nothing_but_a_clean_message_arrives(gw, upstream)


async def test_hdr4_own_resent_fields_are_accepted(gw: RunningGateway, upstream: Upstream) -> None:
    header = (
        f"Resent-From: Referrals <referrals@c4f.example>\r\nResent-Sender: {ALICE}\r\n"
        f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: s\r\n"
    ).encode()
    assert (await submit(gw, header)).startswith("250 2.0.0 Queued")
    [arrived] = await upstream.wait_for(1)
    assert b"Resent-Sender: alice@c4f.example\r\n" in arrived.content


# -- HDR-5 ---------------------------------------------------------------------------------

HDR_5 = {
    "Subject": b"Subject: s\r\nSubject: other\r\n",
    "Subject, other case": b"Subject: s\r\nSUBJECT: other\r\n",
    "Date": (
        b"Subject: s\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
        b"Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n"
    ),
    "To": f"Subject: s\r\nTo: {BOB}\r\n".encode(),
    "Cc": f"Subject: s\r\nCc: {BOB}\r\nCc: {BOB}\r\n".encode(),
    "Bcc": f"Subject: s\r\nBcc: {BOB}\r\nBcc: {BOB}\r\n".encode(),
    "Reply-To": f"Subject: s\r\nReply-To: {ALICE}\r\nReply-To: {ALICE}\r\n".encode(),
    "Message-ID": b"Subject: s\r\nMessage-ID: <1@c4f.example>\r\nMessage-ID: <2@c4f.example>\r\n",
    "In-Reply-To": b"Subject: s\r\nIn-Reply-To: <1@x.example>\r\nIn-Reply-To: <2@x.example>\r\n",
    "References": b"Subject: s\r\nReferences: <1@x.example>\r\nReferences: <2@x.example>\r\n",
    "Sender": f"Subject: s\r\nSender: {ALICE}\r\nSender: {ALICE}\r\n".encode(),
}


@pytest.mark.parametrize("field", list(HDR_5), ids=list(HDR_5))
async def test_hdr5_repeated_singleton_field_is_refused(
    gw: RunningGateway, upstream: Upstream, field: str
) -> None:
    header = f"From: {ALICE}\r\nTo: {BOB}\r\n".encode() + HDR_5[field]
    reply = await submit(gw, header)
    assert reply.startswith("554 5.6.0 "), reply
    name = field.split(",")[0]
    assert f"more than one {name}: field" in reply, reply
    assert "RFC 5322 3.6" in reply
    await nothing_but_a_clean_message_arrives(gw, upstream)


@pytest.mark.parametrize(
    "field", [b"Subject : other\r\n", b"X-Note\t: x\r\n", b"From : " + ALICE.encode() + b"\r\n"]
)
async def test_hdr8_blank_before_a_colon_is_refused_as_malformed(
    gw: RunningGateway, upstream: Upstream, field: bytes
) -> None:
    """Obsolete syntax (RFC 5322 4.5) that readers split differently: Python's email reads
    the header section from that line on as body text, so what the gateway checked and
    where it put the notice need not be what a reader sees (found by the MIME-4 fuzz)."""
    header = f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: s\r\n".encode()
    if field.startswith(b"From"):
        header = f"To: {BOB}\r\nSubject: s\r\n".encode()
    reply = await submit(gw, header + field)
    assert reply.startswith("554 5.6.0 Message header is malformed: a blank between"), reply
    await nothing_but_a_clean_message_arrives(gw, upstream)


async def test_hdr5_repeatable_fields_are_accepted(gw: RunningGateway, upstream: Upstream) -> None:
    header = (
        f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: s\r\nComments: one\r\nComments: two\r\n"
        "Keywords: a\r\nKeywords: b\r\n"
        f"Resent-From: {ALICE}\r\nResent-Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
        f"Resent-From: {ALICE}\r\nResent-Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n"
    ).encode()
    assert (await submit(gw, header)).startswith("250 2.0.0 Queued")
    await upstream.wait_for(1)


# -- HDR-6 ---------------------------------------------------------------------------------

HDR_6 = {
    "From": f"From: Staff: {ALICE};\r\nTo: {BOB}\r\n".encode(),
    "Sender": f"From: {ALICE}\r\nSender: Staff: {ALICE};\r\nTo: {BOB}\r\n".encode(),
    "Reply-To": f"From: {ALICE}\r\nReply-To: Team: {ALICE};\r\nTo: {BOB}\r\n".encode(),
    "Reply-To, empty group": f"From: {ALICE}\r\nReply-To: nobody:;\r\nTo: {BOB}\r\n".encode(),
    "Reply-To, group beside a mailbox": (
        f"From: {ALICE}\r\nReply-To: {ALICE}, Team: x@evil.example;\r\nTo: {BOB}\r\n".encode()
    ),
    "Resent-From": f"Resent-From: Staff: {ALICE};\r\nFrom: {ALICE}\r\nTo: {BOB}\r\n".encode(),
    "Resent-Sender": f"Resent-Sender: Staff: {ALICE};\r\nFrom: {ALICE}\r\nTo: {BOB}\r\n".encode(),
}


@pytest.mark.parametrize("header", list(HDR_6.values()), ids=list(HDR_6))
async def test_hdr6_group_syntax_in_an_originator_field_is_refused(
    gw: RunningGateway, upstream: Upstream, header: bytes
) -> None:
    reply = await submit(gw, header + b"Subject: s\r\n")
    assert reply.startswith("550 5.7.1 "), reply
    assert "group" in reply, reply
    await nothing_but_a_clean_message_arrives(gw, upstream)


# -- HDR-7 ---------------------------------------------------------------------------------

HDR_7 = {
    "full-width at": f"From: {word('director＠c4f.example')} <{ALICE}>\r\n",
    "small commercial at": f"From: {word('director﹫c4f.example')} <{ALICE}>\r\n",
    "all full-width": f"From: {word('ｄｉｒｅｃｔｏｒ＠ｃ４ｆ．ｅｘａｍｐｌｅ')} <{ALICE}>\r\n",
    "circled a": f"From: {word('directorⓐc4f.example')} <{ALICE}>\r\n",
    "ideographic full stop": f"From: {word('director＠c4f。example')} <{ALICE}>\r\n",
    "among words": f"From: {word('Alice for director＠c4f.example')} <{ALICE}>\r\n",
    "quoted encoded word": f'From: "{word("director＠c4f.example")}" <{ALICE}>\r\n',
    "comment": f"From: {ALICE} ({word('director＠c4f.example')})\r\n",
    "plain at, other address": f"From: {word('director@c4f.example')} <{ALICE}>\r\n",
    "own address extended": f"From: {word(ALICE + '.evil.example')} <{ALICE}>\r\n",
    "Sender": f"From: {ALICE}\r\nSender: {word('director＠c4f.example')} <{ALICE}>\r\n",
    "Reply-To": f"From: {ALICE}\r\nReply-To: {word('director＠c4f.example')} <{ALICE}>\r\n",
    "Reply-To, raw UTF-8": f"From: {ALICE}\r\nReply-To: director＠c4f.example <{ALICE}>\r\n",
    "Resent-From": f"Resent-From: {word('director＠c4f.example')} <{ALICE}>\r\nFrom: {ALICE}\r\n",
}


@pytest.mark.parametrize("header", list(HDR_7.values()), ids=list(HDR_7))
async def test_hdr7_display_name_spelling_another_address_is_refused(
    gw: RunningGateway, upstream: Upstream, header: str
) -> None:
    reply = await submit(gw, header.encode() + f"To: {BOB}\r\nSubject: s\r\n".encode())
    assert reply.startswith("550 5.7.1 "), reply
    assert "shows an address" in reply, reply
    await nothing_but_a_clean_message_arrives(gw, upstream)


HDR_7_FINE = {
    "name": f"From: {word('Alice Smith')} <{ALICE}>\r\n",
    "non-Latin name": f"From: {word('Алиса Смит')} <{ALICE}>\r\n",
    "own address as the name": f'From: "{ALICE}" <{ALICE}>\r\n',
    "own address, other case": f'From: "Alice@C4F.example" <{ALICE}>\r\n',
}


@pytest.mark.parametrize("header", list(HDR_7_FINE.values()), ids=list(HDR_7_FINE))
async def test_hdr7_names_without_another_address_are_accepted(
    gw: RunningGateway, upstream: Upstream, header: str
) -> None:
    reply = await submit(gw, header.encode() + f"To: {BOB}\r\nSubject: s\r\n".encode())
    assert reply.startswith("250 2.0.0 Queued"), reply
    await upstream.wait_for(1)
