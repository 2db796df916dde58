"""The queue's tables, and the numbered step that brings an older database up to them.

The numbered sequence of steps is :data:`gateway.schema.STEPS`; ``c4f-gateway upgrade``
runs them. A step checks whether it is needed and is safe to run again.

Step 2 (PRIV-1): ``queue.staff`` held the staff login in the clear; it is sealed in place
(:func:`gateway.queue.sealed.seal_staff`) and the write-ahead log is emptied, so with
``secure_delete`` the clear login is left in neither file. The proof-of-approval table
(:mod:`gateway.queue.release`) and the delivery leases (:mod:`gateway.queue.leases`) are
new tables and need no step: ``CREATE TABLE IF NOT EXISTS``.
"""

from __future__ import annotations

from gateway.crypto import Keyring
from gateway.queue import leases, release
from gateway.queue.sealed import seal_staff
from gateway.store import Store

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS queue (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    staff BLOB NOT NULL,  -- sealed (step 2): the login of the member of staff who sent it
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error BLOB,
    blob BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (state, next_attempt);
CREATE TABLE IF NOT EXISTS queue_rcpt (
    queue_id TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (queue_id, idx)
);
"""
    + release.SCHEMA
    + leases.SCHEMA
)


def step_2_seal_staff(store: Store, keyring: Keyring) -> int:
    """Seal every staff login still in the clear; returns how many rows it changed."""
    if not store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue'"):
        return 0
    clear = store.query("SELECT id, staff FROM queue WHERE typeof(staff) = 'text'")
    if not clear:
        return 0
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE queue SET staff = ? WHERE id = ? AND typeof(staff) = 'text'",
            [(seal_staff(keyring, r["id"], r["staff"]), r["id"]) for r in clear],
        )
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(clear)
