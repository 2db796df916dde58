"""One ``serve`` per database: the lock its processes hold, and the delivery leases a new
one clears (nobody can be holding one when it has the lock), and the body files of
acceptances a crash cut short, which it removes."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import structlog

from gateway.queue import leases
from gateway.queue import schema as queue_schema
from gateway.queue.bodies import BodyFiles, bodies_folder
from gateway.schema_version import DatabaseRefused
from gateway.store import Store

log = structlog.get_logger("gateway.supervisor")

LOCK_WAIT = 15.0  # for the workers of a serve that was killed -9 to finish stopping


def serve_lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".serve-lock")


def take_serve_lock(database: Path, wait: float = LOCK_WAIT) -> int:
    """The exclusive lock of one ``serve`` on ``database``, inherited by its workers;
    waits ``wait`` seconds for the workers of a previous one to end."""
    path = serve_lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise DatabaseRefused(
                    f"{database}: another `c4f-gateway serve` is running on this database "
                    f"(its processes hold {path.name}): stop it first"
                ) from None
            if not said:
                log.warning("serve_waiting_for_previous_workers", lock=path.name)
                said = True
            time.sleep(0.1)


def clear_leases(store: Store) -> None:
    """No process of an earlier ``serve`` is left (we hold the lock): nobody holds a lease."""
    # As the spool does: a new database has no queue yet, an older one no lease table.
    store.ensure(queue_schema.SCHEMA)
    cleared = leases.clear_all(store)
    if cleared:
        log.info("delivery_leases_cleared", count=cleared)


def sweep_bodies(store: Store) -> None:
    """No earlier ``serve`` is accepting (we hold the lock): a body file with no queue row
    is what a crash left between the file and its row's commit (gateway.queue.bodies)."""
    store.ensure(queue_schema.SCHEMA)
    bodies = BodyFiles(bodies_folder(store.path))
    removed = bodies.sweep({r["id"] for r in store.query("SELECT id FROM queue")})
    if removed:
        log.info("orphan_bodies_removed", count=removed)
