"""DATA to the upstream as the delivery sends it (gateway.queue.smtp_exchange.send_data):
dot-stuffed on the wire (RFC 5321 4.5.2) and unstuffed by the upstream to exactly what was
stored, over verified TLS to a real aiosmtpd server.

SMUG-13 covers the same through the whole gateway (test_relay); here the cases a submitted
message cannot carry: a first line that begins with a dot, a lone dot line that would end
the message early if it went out unstuffed, and content that is not CRLF-clean.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiosmtplib
import pytest
from support.pki import TestCA
from support.subprocess_gateway import client_tls
from support.upstream import Upstream

from gateway.queue.smtp_exchange import send_data


@pytest.fixture
async def client(upstream: Upstream, ca: TestCA) -> AsyncIterator[aiosmtplib.SMTP]:
    smtp = aiosmtplib.SMTP(
        hostname="localhost", port=upstream.port, start_tls=True, tls_context=client_tls(ca)
    )
    await smtp.connect()
    await smtp.ehlo()  # again after STARTTLS (RFC 3207 4.2), as the transport does
    yield smtp
    smtp.close()


async def transfer(client: aiosmtplib.SMTP, content: bytes) -> aiosmtplib.SMTPResponse:
    assert (await client.execute_command(b"MAIL", b"FROM:<a@c4f.example>")).code == 250
    assert (await client.execute_command(b"RCPT", b"TO:<b@c4f.example>")).code == 250
    return await send_data(client, content, reply_timeout=10)


@pytest.mark.parametrize(
    ("content", "arrives"),
    [
        (b".first\r\n.\r\n..\r\n.\r\nlast\r\n", b".first\r\n.\r\n..\r\n.\r\nlast\r\n"),
        (b"no final line end\r\n.", b"no final line end\r\n.\r\n"),
        (b"", b"\r\n"),  # as aiosmtplib sends it: one empty line
        # Over 64 KiB, the path that writes the dot, the message and the end apart.
        (b".big\r\n" + b"line\r\n.\r\n" * 8000, b".big\r\n" + b"line\r\n.\r\n" * 8000),
        (b"line\r\n" * 12000 + b"no end", b"line\r\n" * 12000 + b"no end\r\n"),
        # Not CRLF-clean (never queued by submission): repaired as aiosmtplib would.
        (b"bare\nline ends\r.\n", b"bare\r\nline ends\r\n.\r\n"),
    ],
)
async def test_smug13_what_was_stored_is_what_arrives(
    client: aiosmtplib.SMTP, upstream: Upstream, content: bytes, arrives: bytes
) -> None:
    reply = await transfer(client, content)
    assert reply.code == 250
    [arrived] = await upstream.wait_for(1)
    assert arrived.tls
    assert arrived.content == arrives


async def test_two_messages_on_one_connection_stay_apart(
    client: aiosmtplib.SMTP, upstream: Upstream
) -> None:
    for n in (1, 2):
        assert (await transfer(client, b"Subject: %d\r\n\r\n.\r\n" % n)).code == 250
        assert (await client.execute_command(b"RSET")).code == 250
    first, second = await upstream.wait_for(2)
    assert (first.content, second.content) == (
        b"Subject: 1\r\n\r\n.\r\n",
        b"Subject: 2\r\n\r\n.\r\n",
    )


async def test_a_refused_message_raises_with_the_upstream_reply(
    client: aiosmtplib.SMTP, upstream: Upstream
) -> None:
    upstream.behaviour.data_replies.append("554 5.7.1 not today")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await transfer(client, b"Subject: x\r\n\r\nbody\r\n")
    assert (refused.value.code, refused.value.message) == (554, "5.7.1 not today")
    assert upstream.arrived == []
    assert client.is_connected  # a refusal is not a broken connection
