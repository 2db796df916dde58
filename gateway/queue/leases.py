"""Delivery leases: which worker process is delivering a queued message, and until when.

``serve`` runs several worker processes on one database (:mod:`gateway.supervisor`). A
worker takes due messages with :func:`claim`: one ``INSERT … SELECT … ON CONFLICT DO
UPDATE … RETURNING`` under SQLite's write lock gives it the due messages that are
unleased or whose lease has expired, so two workers never hold the same message. The
worker renews its leases while a delivery runs (:func:`renew`), the outcome's
transaction ends them (:meth:`gateway.queue.spool.Spool.finish`), and a worker that
stops gives back what it holds (:func:`release`). A worker killed with -9 renews
nothing: its messages wait until their lease expires, then any worker takes them. Only
``serve``, once it holds the database's serve lock (so no worker of an earlier ``serve``
is left), ends every lease at start (:func:`clear_all`).

The lease (owner, expiry) is a row of its own in ``queue_lease``, one per leased
message, rather than two columns of ``queue``: SQLite rewrites a whole row whose size
changes, and a ``queue`` row holds the sealed message, so a lease there would write the
message again at every claim and release (2 MB of write-ahead log for a 1 MB message),
and a claim would need free pages when the disk is full (DUR-10). The table is new and
needs no upgrade step (``CREATE TABLE IF NOT EXISTS``); deleting the message deletes its
lease.

Leases are written without an fsync of their own (``durable=False``): every worker sees
a lease as soon as it is committed, and a power cut that undoes one loses nothing, since
``serve`` ends every lease when it starts. A claim then holds the write lock for
microseconds, not for a disk flush the acceptances behind it would wait for.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Collection, Iterable

from gateway.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_lease (
    queue_id TEXT PRIMARY KEY REFERENCES queue(id) ON DELETE CASCADE,
    owner TEXT NOT NULL,  -- gateway.queue.leases.new_owner() of the worker delivering it
    until REAL NOT NULL  -- when another worker may take it
);
"""


def new_owner() -> str:
    """A name for this worker's leases: its process ID (for the log) and a random part,
    so a later process with the same ID is someone else."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def _due(skip: int) -> str:
    not_in = f" AND q.id NOT IN ({', '.join('?' * skip)})" if skip else ""
    free = "q.state = 'queued' AND q.next_attempt <= ? AND (l.until IS NULL OR l.until <= ?)"
    joined = "queue q LEFT JOIN queue_lease l ON l.queue_id = q.id"
    # Only placeholders are put into the text: the IDs are bound parameters.
    return f"SELECT q.id FROM {joined} WHERE {free}{not_in} ORDER BY q.next_attempt LIMIT ?"  # noqa: S608


def claim(
    store: Store, owner: str, limit: int, now: float, lease: float, exclude: Collection[str] = ()
) -> list[str]:
    """Lease up to ``limit`` due messages to ``owner`` until ``now + lease``; their IDs.

    A read first, so an idle poll writes nothing; the one statement that takes them
    checks again under the write lock, so a message another worker took meanwhile is
    not returned."""
    if limit <= 0:
        return []
    skip = list(exclude)
    due = _due(len(skip))
    if not store.query(due, (now, now, *skip, limit)):
        return []
    with store.transaction(durable=False) as conn:
        rows = conn.execute(
            f"INSERT INTO queue_lease (queue_id, owner, until) SELECT id, ?, ? FROM ({due})"  # noqa: S608
            " WHERE true ON CONFLICT (queue_id) DO UPDATE SET owner = excluded.owner,"
            " until = excluded.until RETURNING queue_id",
            (owner, now + lease, now, now, *skip, limit),
        ).fetchall()
    return [r["queue_id"] for r in rows]


def renew(store: Store, owner: str, ids: Iterable[str], until: float) -> set[str]:
    """Extend ``owner``'s leases on ``ids``; returns the IDs it no longer holds."""
    wanted = list(ids)
    if not wanted:
        return set()
    marks = ", ".join("?" * len(wanted))
    with store.transaction(durable=False) as conn:
        kept = conn.execute(
            f"UPDATE queue_lease SET until = ? WHERE owner = ? AND queue_id IN ({marks})"  # noqa: S608
            " RETURNING queue_id",
            (until, owner, *wanted),
        ).fetchall()
    return set(wanted) - {r["queue_id"] for r in kept}


def release(store: Store, owner: str, ids: Iterable[str]) -> int:
    """Give back ``owner``'s leases on ``ids`` (the message was not attempted, or the
    worker is stopping); returns how many it held."""
    wanted = list(ids)
    if not wanted:
        return 0
    marks = ", ".join("?" * len(wanted))
    with store.transaction(durable=False) as conn:
        return conn.execute(
            f"DELETE FROM queue_lease WHERE owner = ? AND queue_id IN ({marks})",  # noqa: S608
            (owner, *wanted),
        ).rowcount


def take(conn: sqlite3.Connection, queue_id: str, owner: str, until: float) -> None:
    """Inside a message's acceptance: it is leased to the worker that accepted it, which
    delivers it from memory at once (:meth:`gateway.queue.delivery.DeliveryWorker.hand`):
    no claim and no reading it back. Committed (and fsynced) with the message, so a
    worker killed before it delivers only delays the message until the lease expires."""
    sql = "INSERT INTO queue_lease (queue_id, owner, until) VALUES (?, ?, ?)"
    conn.execute(sql, (queue_id, owner, until))


def end(conn: sqlite3.Connection, queue_id: str) -> None:
    """Inside an attempt's outcome transaction: whoever held it, the lease is over."""
    conn.execute("DELETE FROM queue_lease WHERE queue_id = ?", (queue_id,))


def clear_all(store: Store) -> int:
    """Every lease, at the start of ``serve`` only (no worker of an earlier one is left)."""
    return store.execute("DELETE FROM queue_lease")
