"""End to end: through the running gateway, the upstream receives exactly one notice."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from email.message import EmailMessage

import aiosmtplib
import pytest
from conftest import StartGateway
from support.harness import RunningGateway
from support.mail_views import notices_seen, parse, views
from support.upstream import Upstream

from filters.disclaimer import DEFAULT_FILE, Notice

ALICE = "alice@c4f.example"
CONFIG = {"pipeline": {"filters": ["sender", "disclaimer"]}}
NOTICE_START = b"This document is strictly confidential"
NOTICE_END = b"permanently delete what you have received."
NOTICE_WORDS = Notice.load(DEFAULT_FILE).words
NOTICE_PLAIN = Notice.load(DEFAULT_FILE).plain("\r\n").encode("ascii")


def alternative() -> bytes:
    return (
        f"From: {ALICE}\r\nTo: bob@c4f.example\r\nSubject: Saturday\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\nSee you =E2=80=94 Alice\r\n"
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><body><p>See you</p></body></html>\r\n--alt--\r\n"
    ).encode()


def texts(content: bytes) -> list[str]:
    msg = email.message_from_bytes(content, policy=email.policy.default)
    out = []
    for part in msg.walk():
        if isinstance(part, EmailMessage) and part.get_content_maintype() == "text":
            out.append(str(part.get_content()))
    return out


async def test_upstream_receives_exactly_one_notice_per_body_part(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(ALICE)
    sent = alternative()
    errors, reply = await gw.send(ALICE, ["bob@c4f.example"], sent)
    assert errors == {} and reply.startswith("2.0.0 Queued as ")
    [arrived] = await upstream.wait_for(1)
    content = arrived.content
    assert content.count(NOTICE_START) == 2  # once in the plain part, once in the HTML part
    plain, html = texts(content)
    assert plain.startswith("See you — Alice\r\n\r\n" + NOTICE_START.decode())
    assert plain.count(NOTICE_START.decode()) == 1 and plain.rstrip().endswith(NOTICE_END.decode())
    assert html.count('<div class="c4f-notice">') == 1
    assert html.index("c4f-notice") < html.index("</body>")
    # The client's headers arrive unchanged after the gateway's own Received: field.
    assert sent.split(b"\r\n\r\n")[0] in content


async def test_a_message_that_already_carries_the_notice_gets_no_second_copy(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(ALICE)
    await gw.send(ALICE, ["bob@c4f.example"], alternative())
    [first] = await upstream.wait_for(1)
    relayed_body = first.content.split(b"\r\n\r\n", 1)[1]
    again = alternative().split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + relayed_body
    await gw.send(ALICE, ["bob@c4f.example"], again)
    [_, second] = await upstream.wait_for(2)
    assert second.content.count(NOTICE_START) == 2
    assert second.content.endswith(relayed_body)


async def test_unreadable_structure_is_refused_before_the_250(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(ALICE)
    broken = alternative().replace(b"--alt--\r\n", b"")  # no close delimiter (MIME-2)
    with pytest.raises(aiosmtplib.SMTPDataError) as caught:
        await gw.send(ALICE, ["bob@c4f.example"], broken)
    assert caught.value.code == 554
    assert caught.value.message.startswith("5.6.0 Cannot add the required confidentiality")
    await asyncio.sleep(0.3)
    assert upstream.arrived == []
    assert gw.gateway.spool.rows() == []


# --- shared with the end-to-end tests of MIME-5..9 (test_disclaimer_visible.py, …) ---

UNCLEAN = re.compile(rb"\r(?!\n)|(?<!\r)\n|\x00")  # RFC 5322 2.3, RFC 2045 2.7 and 2.8


async def relay(
    start_gateway: StartGateway, upstream: Upstream, content: bytes
) -> tuple[RunningGateway, bytes]:
    """Send ``content`` as alice through a running gateway; the bytes the upstream receives,
    checked clean and with the notice seen exactly once in every view a reader may show."""
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(ALICE)
    errors, reply = await gw.send(ALICE, ["bob@c4f.example"], content)
    assert errors == {} and reply.startswith("2.0.0 Queued as ")
    [arrived] = await upstream.wait_for(1)
    assert not UNCLEAN.search(arrived.content)
    for view in views(parse(arrived.content)):
        assert notices_seen(view, NOTICE_WORDS) == 1
    return gw, arrived.content
