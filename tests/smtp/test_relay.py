"""The happy path end to end: submission over both listeners, relay over verified TLS."""

from __future__ import annotations

import aiosmtplib
from conftest import StartGateway
from support.harness import PASSWORD, message
from support.upstream import Upstream


async def test_starttls_submission_is_delivered_to_maildir(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff("alice@c4f.example")
    errors, reply = await gw.send(
        "alice@c4f.example", ["bob@c4f.example"], message("alice@c4f.example", ["bob@c4f.example"])
    )
    assert errors == {}
    assert reply.startswith("2.0.0 Queued as ")
    [delivered] = await gw.wait_maildir(1)
    assert b"\r\nFrom: alice@c4f.example\r\n" in delivered
    assert b"Received: from " in delivered


async def test_relay_over_verified_tls_carries_exact_bytes(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream)
    gw.add_staff("alice@c4f.example")
    body = b"From: alice@c4f.example\r\nTo: bob@c4f.example\r\nSubject: x\r\n\r\n.line\r\n..\r\nend"
    _errors, reply = await gw.send("alice@c4f.example", ["bob@c4f.example"], body)
    qid = reply.split()[-1]
    [arrived] = await upstream.wait_for(1)
    assert arrived.tls
    assert arrived.rcpt_tos == ["bob@c4f.example"]
    assert arrived.mail_from == "alice@c4f.example"
    # SMUG-13: dot lines and a missing final newline survive byte for byte (after our headers).
    assert arrived.content.endswith(b"\r\n\r\n.line\r\n..\r\nend\r\n")
    assert arrived.content.startswith(b"Received: from ")
    assert f"id {qid};".encode() in arrived.content


async def test_implicit_tls_listener_accepts_submission(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream)
    gw.add_staff("alice@c4f.example")
    c = aiosmtplib.SMTP(
        hostname="localhost",
        port=gw.implicit_port,
        use_tls=True,
        tls_context=gw.client_tls(),
        timeout=10,
    )
    await c.connect()
    await c.login("alice@c4f.example", PASSWORD)
    msg = message("alice@c4f.example", ["bob@c4f.example"])
    await c.send_message(msg)
    c.close()
    [arrived] = await upstream.wait_for(1)
    assert arrived.rcpt_tos == ["bob@c4f.example"]
