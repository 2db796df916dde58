"""DUR-10: the database cannot commit after the upstream said 250 (a full disk).

The transfer has happened; only our record of it failed. Sending again at every retry
would deliver the message again and again while the register shows nothing (found by
attack: 4 messages arrived 18 times each). What must hold: each message reaches the
upstream once; delivery pauses, says so and shows it (``DeliveryWorker.paused``); once
there is room the transfers are recorded (a register entry each, the queue empty). The
``health`` command's database check fails meanwhile.

How the disk fills: ``PRAGMA max_page_count`` on the gateway's own connection pins the
database at its size, and a filler table takes what free pages are left, so the next page
SQLite needs fails with a genuine SQLITE_FULL ("database or disk is full"), the error a
full filesystem gives. A small tmpfs would do the same but needs root to mount, which a
developer's machine or CI does not give; the page limit works everywhere, and raising it
is how the test gives the room back.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

from conftest import StartGateway
from structlog.testing import capture_logs
from support.delivery import until
from support.harness import message
from support.upstream import Upstream

from gateway.cli.health import database as health_database
from gateway.store import Store

ALICE = "alice@c4f.example"
MESSAGES = 4
# A whole case team on each message: the outcome's register entry is then larger than a
# database page, so recording it needs new pages and cannot fit into leftover room in a
# page the file already has.
TEAM = [f"case-team-member-{i:02d}-{'x' * 60}@partner.test" for i in range(40)]


def fill_disk(store: Store) -> None:
    store.query("CREATE TABLE IF NOT EXISTS disk_filler (b BLOB)")
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")
    for size in (4096, 512, 64):
        with contextlib.suppress(sqlite3.OperationalError):
            while True:  # until SQLITE_FULL: the free pages and the filler's last page used up
                store.query("INSERT INTO disk_filler VALUES (zeroblob(?))", (size,))


def give_room_back(store: Store) -> None:
    store.query("PRAGMA max_page_count = 1073741823")


def copies(upstream: Upstream, qids: list[str]) -> dict[str, int]:
    """How many times each message reached the upstream (by our Received: field)."""
    return {q: sum(f"id {q};".encode() in a.content for a in upstream.arrived) for q in qids}


async def test_dur10_full_database_after_upstream_250_sends_once_and_records_once(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, deliver=False)
    gw.add_staff(ALICE)
    qids = []
    for n in range(MESSAGES):
        _errors, reply = await gw.send(ALICE, TEAM, message(ALICE, TEAM, body=f"NOTE-{n}\n"))
        qids.append(reply.split()[-1])
    store, worker = gw.gateway.store, gw.gateway.worker
    fill_disk(store)

    with capture_logs() as logs:
        delivering = asyncio.create_task(worker.run())  # the gateway's own worker
        await upstream.wait_for(MESSAGES)
        # Five retry intervals (delivery.retry_initial is 0.2 s in tests): each would
        # send every message again if a failed record left it due.
        await asyncio.sleep(1.0)
        assert copies(upstream, qids) == dict.fromkeys(qids, 1)
        assert len(upstream.arrived) == MESSAGES
        assert worker.paused
        assert [e for e in logs if e["event"] == "delivery_paused"]
        assert len(store.query("SELECT id FROM queue")) == MESSAGES  # nothing recorded yet
        # `c4f-gateway health` says so too: its database check commits, and cannot.
        full = health_database(store)
        assert not full.ok and "database or disk is full" in full.detail, full

        give_room_back(store)
        await until(lambda: not store.query("SELECT id FROM queue"))
        assert not worker.paused
        assert health_database(store).ok
        assert [e for e in logs if e["event"] == "delivery_resumed"]

    assert len(upstream.arrived) == MESSAGES
    assert copies(upstream, qids) == dict.fromkeys(qids, 1)
    register = gw.gateway.register
    assert register is not None
    outcomes = [e for e in register.entries() if e.kind == "outcome"]
    # One entry per transfer, each the delivery to the whole team, in an intact chain.
    assert sorted((e.queue_id, e.data["status"], e.data["recipients"]) for e in outcomes) == sorted(
        (qid, "delivered", TEAM) for qid in qids
    )
    assert store.query("SELECT count(*) FROM queue_rcpt")[0][0] == 0
    assert register.verify().ok

    await worker.stop()
    await delivering
