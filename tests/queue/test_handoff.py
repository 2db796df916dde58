"""A message is delivered by the process that accepted it, from memory.

When its delivery worker has a slot free, the acceptance's own transaction leases the
message to that worker (``gateway.queue.leases.take``), and the worker sends what it holds
instead of claiming the message and reading it back. The lease is committed with the
message: no other worker can take it meanwhile, and the outcome ends it.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator

import pytest
from conftest import StartGateway
from support.delivery import until
from support.harness import PASSWORD, message
from support.pki import TestCA
from support.rawsmtp import authenticated
from support.upstream import Upstream, UpstreamBehaviour

from gateway.queue import leases
from gateway.store_lock import write_lock_path

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"


@pytest.fixture
async def slow_upstream(ca: TestCA) -> AsyncIterator[Upstream]:
    """Holds its reply to DATA for a second: the lease can be looked at meanwhile."""
    cert = ca.issue("localhost", sans=["localhost", "127.0.0.1"])
    up = await Upstream(cert, UpstreamBehaviour(data_delay=1.0)).start()
    yield up
    await up.stop()


async def test_the_accepting_worker_holds_the_lease_from_the_250_and_sends_it_once(
    start_gateway: StartGateway, slow_upstream: Upstream
) -> None:
    # No regular poll during the test: what is delivered was handed over.
    gw = await start_gateway(upstream=slow_upstream, config={"delivery": {"poll_interval": 60}})
    gw.add_staff(ALICE)
    store, worker = gw.gateway.store, gw.gateway.worker
    await asyncio.sleep(0.5)  # the worker's first poll, when it starts, is over
    reads: list[str] = []
    store._reader.set_trace_callback(reads.append)

    _errors, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="HANDED\n"))
    qid = reply.split()[-1]
    # Committed with the message, before the 250: this worker's, for [delivery] lease.
    [row] = store.query("SELECT owner, until FROM queue_lease WHERE queue_id = ?", (qid,))
    assert row["owner"] == worker.owner
    # Another worker polling now gets nothing (DUR-11).
    assert leases.claim(store, "other-worker", 10, row["until"] - 1.0, 60.0) == []
    polled_by_us = len(reads)

    [arrived] = await slow_upstream.wait_for(1)
    assert f"id {qid};".encode() in arrived.content and arrived.content.endswith(b"HANDED\r\n")
    await until(lambda: not store.query("SELECT id FROM queue"))
    assert store.query("SELECT * FROM queue_lease") == []
    # Sent from memory: the sealed message was never read back for it, and no poll
    # looked for it (neither at its acceptance nor when its delivery ended).
    assert not [sql for sql in reads if "SELECT created, attempts, blob" in sql]
    assert [sql for sql in reads if "LEFT JOIN queue_lease" in sql] == [reads[polled_by_us - 1]]
    assert len(slow_upstream.arrived) == 1


async def test_with_no_slot_free_a_message_waits_unleased_for_the_slot(
    start_gateway: StartGateway, slow_upstream: Upstream
) -> None:
    # The regular poll is a minute away: the second message is taken when the slot frees.
    config = {"delivery": {"concurrency": 1, "poll_interval": 60}}
    gw = await start_gateway(upstream=slow_upstream, config=config)
    gw.add_staff(ALICE)
    store = gw.gateway.store
    _e, first = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="FIRST\n"))
    _e, second = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="SECOND\n"))
    # The one slot is the first message's: the second was queued without a lease.
    leased = {r["queue_id"] for r in store.query("SELECT queue_id FROM queue_lease")}
    assert leased == {first.split()[-1]} and second.split()[-1] not in leased
    arrived = await slow_upstream.wait_for(2, timeout=8)
    assert sorted(a.content[-8:] for a in arrived) == [b"\nFIRST\r\n", b"SECOND\r\n"]


async def test_a_gateway_not_delivering_leases_nothing(start_gateway: StartGateway) -> None:
    gw = await start_gateway(deliver=False)
    gw.add_staff(ALICE)
    _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB]))
    assert reply.startswith("2.0.0 Queued as ")
    assert gw.gateway.store.query("SELECT * FROM queue_lease") == []


async def test_a_message_whose_client_leaves_during_the_commit_is_still_sent_at_once(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    """The client hangs up while its message waits for the disk. The commit still happens
    (with this worker's lease), so the message must be handed over all the same: else it
    would wait for its lease to expire (two minutes), with a delivery slot lost for good."""
    gw = await start_gateway(upstream=upstream, config={"delivery": {"poll_interval": 60}})
    gw.add_staff(ALICE)
    store, worker = gw.gateway.store, gw.gateway.worker
    await asyncio.sleep(0.5)  # the worker's first poll, when it starts, is over
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    assert (await c.cmd(f"RCPT TO:<{BOB}>")).startswith("250")
    assert (await c.cmd("DATA")).startswith("354")
    # The database's writer lock is taken, as by another worker process in a long commit.
    with open(write_lock_path(store.path), "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        waited = store.write_lock.waits
        body = f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: Visit notes\r\n\r\nLEFT\r\n.\r\n"
        await c.send(body.encode())
        await until(lambda: store.write_lock.waits > waited)  # its commit waits for the lock
        await c.close()  # and the client goes away without its reply
        await asyncio.sleep(0.3)
        fcntl.flock(other, fcntl.LOCK_UN)
    [arrived] = await upstream.wait_for(1, timeout=10)
    assert arrived.content.endswith(b"LEFT\r\n")
    await until(lambda: not store.query("SELECT id FROM queue"))
    assert worker._reserved == 0
