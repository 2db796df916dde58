"""MIME-7 (tests/CATALOGUE.md): what the gateway adds is clean.

A body in a charset whose line breaks are not the bytes CR LF (UTF-16, UTF-32, EBCDIC) marked
7bit or 8bit: the notice written in that charset would put NUL and bare CR or LF into relayed
mail, the very bytes the gateway refuses from clients (SMUG-…). Such a part is re-encoded
(base64, RFC 2781 4) so what leaves is as clean as what arrives. The check on what leaves the
running gateway is in test_disclaimer_e2e.py.
"""

from __future__ import annotations

import asyncio
import re

import aiosmtplib
import pytest
from conftest import StartGateway
from support.mail_views import notices_seen, parse, views
from support.upstream import Upstream
from test_disclaimer_e2e import ALICE, CONFIG, relay

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice
from gateway.envelope import Transaction

NOTICE = Notice.load(DEFAULT_FILE)
HEAD = b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
UNCLEAN = re.compile(rb"\r(?!\n)|(?<!\r)\n|\x00")  # RFC 5322 2.3, RFC 2045 2.7 and 2.8


def mixed(part: bytes) -> bytes:
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="m-b"\r\n\r\n--m-b\r\n'
        + part
        + (b"\r\n--m-b--\r\n")
    )


CASES = {
    # (charset, transfer encoding, text): each body is free of NUL, CR and LF as it arrives.
    "utf-16-8bit": ("utf-16", "8bit", "土曜日の面会"),
    "utf-16le-7bit": ("utf-16le", "7bit", "䅁䉂䍃"),
    "utf-16be-8bit": ("utf-16be", "8bit", "面会"),
    "ibm037-8bit": ("ibm037", "8bit", "Hello Bob"),
}


@pytest.mark.parametrize(("charset", "cte", "text"), CASES.values(), ids=CASES.keys())
def test_mime7_notice_in_a_non_ascii_compatible_charset_adds_no_nul_or_bare_line_end(
    charset: str, cte: str, text: str
) -> None:
    body = text.encode(charset)
    assert not UNCLEAN.search(body)
    src = mixed(
        f"Content-Type: text/plain; charset={charset}\r\n".encode()
        + f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + body
    )
    result = add_notice(src, NOTICE)
    assert add_notice(src, NOTICE, clean=True) == result  # as the pipeline calls it
    assert result.action == "inserted"
    assert not UNCLEAN.search(result.content)
    [part] = [p for p in parse(result.content).walk() if p.get_content_maintype() == "text"]
    assert part["Content-Transfer-Encoding"] == "base64"
    assert part.get_content_charset() == charset
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode(charset) == text + "\r\n\r\n" + NOTICE.plain("\r\n")
    for view in views(parse(result.content)):
        assert notices_seen(view, NOTICE.words) == 1
    again = add_notice(result.content, NOTICE)
    assert again.action == "present" and again.content == result.content


def test_mime7_single_part_utf16_message_is_re_encoded() -> None:
    src = (
        HEAD
        + b"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "面会".encode("utf-16")
    )
    result = add_notice(src, NOTICE)
    assert not UNCLEAN.search(result.content)
    assert b"\r\nContent-Transfer-Encoding: base64\r\n" in result.content
    assert result.content.startswith(HEAD)


async def test_mime7_utf16_body_marked_8bit_arrives_clean(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    charset, cte, text = CASES["utf-16-8bit"]
    sent = mixed(
        f"Content-Type: text/plain; charset={charset}\r\n".encode()
        + f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + text.encode(charset)
    )
    _, content = await relay(start_gateway, upstream, sent)  # relay checks NUL and CR/LF
    [part] = [p for p in parse(content).walk() if p.get_content_maintype() == "text"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.decode(charset) == text + "\r\n\r\n" + NOTICE.plain("\r\n")


class _BareLineFeed:
    """A content filter with a fault: it adds a bare LF (injected through the pipeline's own
    plug-in point, as a faulty filter of ours or a third party's would be)."""

    name = "bare_lf"

    async def on_data(self, tx: Transaction, content: bytes) -> bytes:
        return content + b"X\nY\r\n"


async def test_mime7_what_leaves_is_checked_like_what_arrives(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(ALICE)
    gw.gateway.pipeline.filters.append(_BareLineFeed())
    sent = HEAD + b"Content-Type: text/plain\r\n\r\nSee you.\r\n"
    with pytest.raises(aiosmtplib.SMTPDataError) as caught:
        await gw.send(ALICE, ["bob@c4f.example"], sent)
    assert caught.value.code == 451  # a fault of ours, never a 250: fail closed
    assert caught.value.message.startswith("4.3.0 ")
    await asyncio.sleep(0.3)
    assert upstream.arrived == []
    assert gw.gateway.spool.rows() == []
