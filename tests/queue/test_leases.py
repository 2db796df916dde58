"""Delivery leases (gateway.queue.leases) on a real SQLite file, two connections at once.

Each connection stands for one worker process: what one holds the other cannot take
until the lease expires; a renewal keeps it; an outcome or a release gives it back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from gateway.crypto import Keyring
from gateway.queue import leases
from gateway.queue.spool import Spool
from gateway.store import Store

NOW = 1_800_000_000.0


def queued(tmp_path: Path, count: int) -> tuple[Store, Spool, list[str]]:
    store = Store(tmp_path / "gateway.db")
    Keyring.create(tmp_path / "keys" / "spool.key")
    keyring = Keyring.load(tmp_path / "keys" / "spool.key")
    spool = Spool(store, keyring, clock=lambda: NOW - 10)
    ids = [f"Q{i:011d}" for i in range(count)]
    for qid in ids:
        spool.accept(
            queue_id=qid,
            staff="alice@c4f.example",
            peer="127.0.0.1",
            mail_from="alice@c4f.example",
            rcpt_tos=["bob@c4f.example"],
            content=b"Subject: x\r\n\r\nbody\r\n",
        )
    return store, spool, ids


def row(store: Store, qid: str) -> tuple[str | None, float | None]:
    found = store.query("SELECT owner, until FROM queue_lease WHERE queue_id = ?", (qid,))
    return (found[0]["owner"], found[0]["until"]) if found else (None, None)


def test_two_workers_claiming_at_once_never_share_a_message(tmp_path: Path) -> None:
    store, _spool, ids = queued(tmp_path, 40)
    other = Store(tmp_path / "gateway.db")  # a second process's connection
    got: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def worker(name: str, conn: Store) -> None:
        start.wait()
        while batch := leases.claim(conn, name, 3, NOW, 60.0):
            got[name] += batch
            time.sleep(0.01)  # as if delivering: the other claims meanwhile

    threads = [
        threading.Thread(target=worker, args=("a", store)),
        threading.Thread(target=worker, args=("b", other)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got["a"] + got["b"]) == ids  # every message, once
    assert not set(got["a"]) & set(got["b"])
    assert got["a"] and got["b"]
    assert {row(store, q)[0] for q in got["a"]} == {"a"}
    other.close()


def test_a_lease_is_taken_again_only_once_it_has_expired(tmp_path: Path) -> None:
    store, _spool, [qid] = queued(tmp_path, 1)
    assert leases.claim(store, "dead", 5, NOW, 30.0) == [qid]
    assert row(store, qid) == ("dead", NOW + 30.0)
    assert leases.claim(store, "alive", 5, NOW + 29.9, 30.0) == []
    assert leases.claim(store, "alive", 5, NOW + 30.0, 30.0) == [qid]
    assert row(store, qid) == ("alive", NOW + 60.0)
    # The old holder's renewal finds it gone, and changes nothing.
    assert leases.renew(store, "dead", [qid], NOW + 90.0) == {qid}
    assert row(store, qid) == ("alive", NOW + 60.0)


def test_renewal_keeps_it_and_release_or_outcome_gives_it_back(tmp_path: Path) -> None:
    store, spool, [one, two] = queued(tmp_path, 2)
    assert leases.claim(store, "w", 5, NOW, 30.0) == [one, two]
    assert leases.renew(store, "w", [one, two], NOW + 100.0) == set()
    assert leases.claim(store, "x", 5, NOW + 60.0, 30.0) == []  # renewed past 60
    assert leases.release(store, "x", [one]) == 0  # not its lease
    assert leases.release(store, "w", [one]) == 1
    assert row(store, one) == (None, None)
    # An attempt's outcome (deferred here) clears the lease in its own transaction.
    msg = spool.load(two)
    assert msg is not None
    spool.finish(msg, delivered=[], bounced=[], outcomes=[], retry_at=NOW + 5, error="451")
    assert row(store, two) == (None, None)
    assert leases.claim(store, "x", 5, NOW + 5, 30.0) == [one, two]


def test_claim_skips_what_is_not_due_and_what_the_worker_keeps(tmp_path: Path) -> None:
    store, _spool, [one, two, three] = queued(tmp_path, 3)
    store.execute("UPDATE queue SET next_attempt = ? WHERE id = ?", (NOW + 100, one))
    store.execute("UPDATE queue SET state = 'held' WHERE id = ?", (two,))
    assert leases.claim(store, "w", 5, NOW, 30.0, exclude={three}) == []
    assert leases.claim(store, "w", 5, NOW, 30.0) == [three]
    assert leases.clear_all(store) == 1
    assert row(store, three) == (None, None)


def synchronous(store: Store) -> int:
    return int(store.query("PRAGMA synchronous")[0][0])


def _label(sql: str) -> str:
    """A traced statement, by its kind (the pragmas and BEGIN as written)."""
    return sql if sql.startswith(("PRAGMA", "BEGIN")) else sql.split()[0]


def test_leases_skip_the_fsync_and_every_other_commit_keeps_it(tmp_path: Path) -> None:
    store, _spool, ids = queued(tmp_path, 2)
    assert synchronous(store) == 2  # FULL: a commit is on disk before it returns
    ran: list[str] = []
    store._conn.set_trace_callback(ran.append)  # what the writing connection executes
    assert leases.claim(store, "w1", 1, NOW, 60) == ids[:1]
    assert leases.renew(store, "w1", ids[:1], NOW + 120) == set()
    assert leases.release(store, "w1", ids[:1]) == 1
    # Each lease write between NORMAL and FULL again: committed without an fsync.
    lease = ["PRAGMA synchronous=NORMAL", "BEGIN IMMEDIATE", "COMMIT", "PRAGMA synchronous=FULL"]
    assert [_label(q) for q in ran] == [
        *lease[:2], "INSERT", *lease[2:], *lease[:2], "UPDATE", *lease[2:],
        *lease[:2], "DELETE", *lease[2:],
    ]  # fmt: skip
    ran.clear()
    store.execute("DELETE FROM queue_lease")  # any other write: durable
    assert [_label(q) for q in ran] == ["BEGIN IMMEDIATE", "DELETE", "COMMIT"]
    assert synchronous(store) == 2
    # A lease transaction that fails puts FULL back too.
    with (
        pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"),
        store.transaction(durable=False) as conn,
    ):
        conn.execute("INSERT INTO queue_lease (queue_id, owner, until) VALUES ('nope', 'w', 0)")
    assert synchronous(store) == 2
    store._conn.set_trace_callback(None)
    # A second connection (another worker) sees a lease as soon as it is committed.
    other = Store(tmp_path / "gateway.db")
    try:
        assert leases.claim(store, "w1", 2, NOW, 60) == ids
        assert leases.claim(other, "w2", 2, NOW, 60) == []
    finally:
        other.close()
        store.close()
