"""Faults inside acceptance and after delivery (DUR-1, DUR-5, DUR-6).

Acceptance is one SQLite transaction: seal the message, insert the queue row, insert the
recipient rows, append the register's record, COMMIT; the 250 comes only after it. Each
fault here is a real failure at one of those steps (a key AES-GCM refuses, a SQLite
trigger that aborts the insert like a failing disk, a recorder that raises, a deferred
constraint that fails the COMMIT itself, a database at its size limit). The client gets
``451 4.3.0``, never 250; nothing is delivered, and after a restart the message is absent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiosmtplib
import pytest
from conftest import StartGateway
from support.harness import RunningGateway, message
from support.upstream import Upstream

from gateway.crypto import Keyring
from gateway.events import Accepted, NullRecorder, Outcome

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"


class FailingRecorder(NullRecorder):
    """A register whose append fails (disk full, a broken chain): DUR-6."""

    def __init__(self, *, fail_accepted: bool = False, fail_outcomes: int = 0) -> None:
        self.fail_accepted = fail_accepted
        self.fail_outcomes = fail_outcomes
        self.outcomes: list[Outcome] = []

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        if self.fail_accepted:
            raise sqlite3.OperationalError("register append failed")

    def outcome(self, conn: sqlite3.Connection, event: Outcome) -> None:
        if self.fail_outcomes > 0:
            self.fail_outcomes -= 1
            raise sqlite3.OperationalError("register append failed")
        self.outcomes.append(event)


PROBE_DDL = """
CREATE TABLE IF NOT EXISTS probe_parent (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS probe_child (
    parent TEXT REFERENCES probe_parent(id) DEFERRABLE INITIALLY DEFERRED
);
"""


class CommitFails(NullRecorder):
    """Writes a row whose deferred foreign key is checked only at COMMIT, which then fails."""

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        conn.execute("INSERT INTO probe_child (parent) VALUES ('missing')")


def abort_insert(table: str) -> Callable[[RunningGateway], None]:
    def arm(gw: RunningGateway) -> None:
        with gw.gateway.store.transaction() as conn:
            conn.execute(
                f"CREATE TRIGGER fault_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )

    return arm


def broken_key(gw: RunningGateway) -> None:
    # A real Keyring holding a 7-byte key: AES-GCM refuses to seal with it.
    gw.gateway.spool.keyring = Keyring([("broken", bytes(7))])


def probe_tables(gw: RunningGateway) -> None:
    gw.gateway.store.ensure(PROBE_DDL)


FAULTS = {
    "seal": (broken_key, None),
    "insert_queue_row": (abort_insert("queue"), None),
    "insert_recipient_rows": (abort_insert("queue_rcpt"), None),
    "register_record": (lambda gw: None, FailingRecorder(fail_accepted=True)),
    "commit": (probe_tables, CommitFails()),
}


def rows(gw: RunningGateway, table: str) -> int:
    sql = f"SELECT count(*) AS n FROM {table}"  # noqa: S608 (a table name of ours)
    return int(gw.gateway.store.query(sql)[0]["n"])


async def send_expecting_451(gw: RunningGateway, content: bytes) -> None:
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await gw.send(ALICE, [BOB], content)
    assert refused.value.code == 451
    assert refused.value.message.startswith("4.3.0 ")


@pytest.mark.parametrize(
    "fault",
    list(FAULTS),
)
async def test_dur1_fault_during_acceptance_gives_451_and_nothing_is_ever_sent(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path, fault: str
) -> None:
    arm, recorder = FAULTS[fault]
    folder = tmp_path / "gw"
    gw = await start_gateway(upstream=upstream, folder=folder, recorder=recorder)
    gw.add_staff(ALICE)
    arm(gw)
    doomed = message(ALICE, [BOB], body="DOOMED-MESSAGE\n").as_bytes()
    await send_expecting_451(gw, doomed)
    # The worker polls every 50 ms: give it many chances to (wrongly) find something.
    await asyncio.sleep(0.5)
    assert upstream.arrived == []
    assert rows(gw, "queue") == 0
    assert rows(gw, "queue_rcpt") == 0

    # Restart on the same database, without the fault: the message is absent, not sent.
    await gw.gateway.stop()
    gw = await start_gateway(upstream=upstream, folder=folder)
    with gw.gateway.store.transaction() as conn:
        conn.execute("DROP TRIGGER IF EXISTS fault_queue")
        conn.execute("DROP TRIGGER IF EXISTS fault_queue_rcpt")
    await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="SENTINEL\n"))
    [arrived] = await upstream.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(upstream.arrived) == 1
    assert b"SENTINEL" in arrived.content
    assert rows(gw, "queue") == 0


async def test_dur5_database_full_gives_451_and_the_gateway_recovers(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    """DUR-5: SQLITE_FULL (the database at its size limit, as on a full disk) -> 451 4.3.0."""
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    store = gw.gateway.store
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")
    big = message(ALICE, [BOB], body="FULL-DISK-MESSAGE " * 2000 + "\n").as_bytes()
    await send_expecting_451(gw, big)
    assert rows(gw, "queue") == 0

    store.query("PRAGMA max_page_count = 1073741823")  # space freed: no restart needed
    await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="AFTER-THE-FULL-DISK\n"))
    [arrived] = await upstream.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(upstream.arrived) == 1
    assert b"AFTER-THE-FULL-DISK" in arrived.content


async def test_dur5_free_space_below_minimum_gives_452_at_mail(
    start_gateway: StartGateway,
) -> None:
    """DUR-5: less free space than limits.min_free_space -> 452 4.3.1 at MAIL FROM."""
    gw = await start_gateway(config={"limits": {"min_free_space": 2**62}})
    gw.add_staff(ALICE)
    client = await gw.client(ALICE)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(ALICE)
    finally:
        client.close()
    assert refused.value.code == 452
    assert refused.value.message.startswith("4.3.1 ")
    assert rows(gw, "queue") == 0


async def test_dur6_register_failure_after_delivery_is_kept_and_never_resent(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    """DUR-6 after delivery: the upstream said 250 but our record of it failed.

    Nothing is marked done while the record is missing (the queue row stays); the outcome
    is kept and written at the next poll, and the message is not offered upstream again
    (DUR-10: resending because our own record failed would deliver it twice). Only a
    crash in between resends (DUR-7, test_durability_kill9.py).
    """
    recorder = FailingRecorder(fail_outcomes=1)
    gw = await start_gateway(upstream=upstream, recorder=recorder)
    gw.add_staff(ALICE)
    _errors, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB]))
    qid = reply.split()[-1]
    [first] = await upstream.wait_for(1)
    assert f"id {qid};".encode() in first.content
    for _ in range(100):
        if rows(gw, "queue") == 0:
            break
        await asyncio.sleep(0.05)
    assert rows(gw, "queue") == 0
    assert recorder.fail_outcomes == 0  # the first record did fail
    assert [(o.queue_id, o.status, o.attempt) for o in recorder.outcomes] == [(qid, "delivered", 1)]
    await asyncio.sleep(0.5)  # more than two retry intervals (retry_initial 0.2 s)
    assert len(upstream.arrived) == 1
