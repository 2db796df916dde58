"""The embedded SQLite database that holds the queue, staff accounts and (later) contacts
and the register.

One connection per process, guarded by a lock, in WAL mode with ``synchronous=FULL`` so a
committed transaction survives power loss (with ``NORMAL`` a WAL commit can be lost).
Blocking calls run in a worker thread from async code (``await store.run(fn, ...)``).
Each component creates its own tables with :meth:`Store.ensure`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._ensured: set[str] = set()
        if path.exists():
            path.chmod(0o600)

    def ensure(self, ddl: str) -> None:
        """Create tables and indexes (idempotent ``CREATE ... IF NOT EXISTS`` statements)."""
        if ddl in self._ensured:
            return
        with self._lock:
            self._conn.executescript(ddl)
            self._ensured.add(ddl)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed (and fsynced) on exit, rolled back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT leaves the transaction open: without this ROLLBACK the same
                # connection would read the uncommitted rows (and deliver a message answered
                # 451). SQLite may already have rolled back by itself (SQLITE_FULL).
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
