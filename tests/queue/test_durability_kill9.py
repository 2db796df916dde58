"""kill -9 of the real ``c4f-gateway serve`` process (RFC 5321 6.1: a 250 is a promise).

The gateway runs as a child process; SIGKILL lets no handler run. After a restart every
message that got a 250 is delivered, and a message cut off before its 250 is delivered
whole or not at all, never in part.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.harness import PASSWORD
from support.pki import TestCA
from support.rawsmtp import authenticated
from support.subprocess_gateway import (
    GatewayProcess,
    client_tls,
    connect,
    free_port,
    prepare,
    soak_message,
)
from support.upstream import Upstream, UpstreamBehaviour

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"

pytestmark = pytest.mark.slow


async def wait_until_drained(gw: GatewayProcess, upstream: Upstream, count: int) -> None:
    await upstream.wait_for(count, timeout=20)
    for _ in range(200):
        if not gw.queue_states():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"queue did not drain: {gw.queue_states()}")


async def test_kill9_right_after_250_is_delivered_after_restart(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    """The kill lands as soon as the 250 is read; the message arrives after the restart."""
    gw = await GatewayProcess(prepare(tmp_path, ca, upstream_port=upstream.port)).start()
    content = soak_message("a1b2c3", spoofed=False)
    client = await connect(gw.port, ca)
    _errors, reply = await client.sendmail(ALICE, [BOB], content)
    await gw.kill()
    client.close()
    assert reply.startswith("2.0.0 Queued as ")
    qid = reply.split()[-1]

    await gw.start()
    await wait_until_drained(gw, upstream, 1)
    await gw.stop()
    # At least once: a copy may have left before the kill, then again after it (DUR-7).
    assert upstream.arrived
    for arrived in upstream.arrived:
        assert arrived.content.endswith(b"\r\n" + content)
        assert f"id {qid};".encode() in arrived.content


async def test_kill9_with_upstream_down_keeps_message_until_restart(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    """Spooled at the kill (the upstream was down), delivered exactly once after restart."""
    config = prepare(tmp_path, ca, upstream_port=free_port())
    gw = await GatewayProcess(config).start()
    content = soak_message("d4e5f6", spoofed=False)
    client = await connect(gw.port, ca)
    _errors, reply = await client.sendmail(ALICE, [BOB], content)
    await gw.kill()
    client.close()
    assert reply.startswith("2.0.0 Queued as ")
    assert gw.queue_states() == ["queued"]

    prepare(tmp_path, ca, upstream_port=upstream.port)  # the upstream is back
    await gw.start()
    await wait_until_drained(gw, upstream, 1)
    await asyncio.sleep(0.5)  # room for a wrong second delivery
    await gw.stop()
    [arrived] = upstream.arrived
    assert arrived.content.endswith(b"\r\n" + content)
    assert arrived.rcpt_tos == [BOB]
    assert arrived.tls


@pytest.mark.parametrize("cut", ["half_body", "final_dot_unanswered"])
async def test_kill9_mid_transaction_is_never_half_delivered(
    tmp_path: Path, ca: TestCA, upstream: Upstream, cut: str
) -> None:
    """No 250 yet: after the restart the message is absent, or whole, never partial."""
    gw = await GatewayProcess(prepare(tmp_path, ca, upstream_port=upstream.port)).start()
    content = soak_message("0badc0ffee", spoofed=False)
    c = await authenticated(gw.port, client_tls(ca), ALICE, PASSWORD)
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    assert (await c.cmd(f"RCPT TO:<{BOB}>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if cut == "half_body":
        await c.send(stuffed[: len(stuffed) // 2])
    else:
        await c.send(stuffed + b".\r\n")
    await asyncio.sleep(0.05 if cut == "half_body" else 0)
    await gw.kill()
    await c.close()

    await gw.start()
    sentinel = soak_message("5e7714e1", spoofed=False)
    client = await connect(gw.port, ca)
    await client.sendmail(ALICE, [BOB], sentinel)
    client.close()
    await upstream.wait_for(1, timeout=20)
    await asyncio.sleep(0.5)  # room for the cut-off message to (wrongly) show up
    await gw.stop()
    bodies = [a.content for a in upstream.arrived]
    assert sum(b.endswith(b"\r\n" + sentinel) for b in bodies) == 1
    others = [b for b in bodies if not b.endswith(b"\r\n" + sentinel)]
    if cut == "half_body":
        assert others == []
    else:  # the final dot may or may not have been committed before the kill
        assert all(b.endswith(b"\r\n" + content) for b in others)
    assert gw.queue_states() == []


async def test_dur7_kill9_between_upstream_250_and_our_record_resends_same_queue_id(
    tmp_path: Path, ca: TestCA
) -> None:
    """DUR-7: the upstream took the message and said 250; we died before recording it.

    The upstream holds its reply to the final dot for a moment; meanwhile the gateway is
    frozen (SIGSTOP), so the 250 reaches a process that cannot act on it, and then it is
    SIGKILLed. After the restart the message goes again: two copies, the same queue ID,
    the same bytes (at least once, RFC 1047).
    """
    cert = ca.issue("localhost", sans=["localhost", "127.0.0.1"])
    upstream = await Upstream(cert, UpstreamBehaviour(data_delay=1.0)).start()
    try:
        gw = await GatewayProcess(prepare(tmp_path, ca, upstream_port=upstream.port)).start()
        content = soak_message("d0b1e7", spoofed=False)
        client = await connect(gw.port, ca)
        _errors, reply = await client.sendmail(ALICE, [BOB], content)
        client.close()
        qid = reply.split()[-1]
        for _ in range(200):  # until the gateway has sent DATA
            if "DATA" in upstream.transcript:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # the message (1 KB) is through; the reply is held
        gw.freeze()
        await upstream.wait_for(1)  # the upstream has it and has answered 250
        await gw.kill()
        assert gw.queue_states() == ["queued"]  # no record of the delivery

        upstream.behaviour.data_delay = 0
        await gw.start()
        await wait_until_drained(gw, upstream, 2)
        await asyncio.sleep(0.3)
        await gw.stop()
    finally:
        await upstream.stop()
    first, second = upstream.arrived
    assert first.content == second.content
    assert first.content.endswith(b"\r\n" + content)
    assert f"id {qid};".encode() in first.content
