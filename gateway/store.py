"""The embedded SQLite database that holds the queue, staff accounts and (later) contacts
and the register.

One connection per process for writing, guarded by a lock (and, across processes, by the
write lock of :mod:`gateway.store_lock`: writers take turns without sleeping, and one
that waits longer than ``write_wait`` fails rather than hangs), in WAL mode with
``synchronous=FULL`` so a committed transaction survives power loss (with ``NORMAL`` a
WAL commit can be lost). Blocking calls run in a worker thread from async code (``await
store.run(fn, ...)``). Each component creates its own tables with :meth:`Store.ensure`.

Group commit: :meth:`Store.together` (and ``await`` :meth:`Store.together_async`) runs a
write inside one transaction shared with the writes other sessions hand in at the same
time, so one fsync covers them all. It returns only after the COMMIT that covers it; if
that COMMIT fails, every write in it fails (so each client gets 451, never 250). The
thread that does it is :mod:`gateway.store_group`.

``SELECT`` through :meth:`Store.query` reads on a second connection with its own lock
(WAL: readers see the last commit and do not wait for a writer), so a staff or contact
lookup on the event loop never waits behind a commit's fsync. A thread inside its own
write transaction reads on the writing connection, and so sees its own writes.

Opening checks the schema version (:mod:`gateway.schema_version`) and takes a shared lock
on ``DATABASE.lock`` for as long as the store is open; ``restore`` and ``upgrade`` take it
exclusively, so they never replace or change a database another gateway process has open.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from gateway import schema_version
from gateway.schema_version import DatabaseRefused
from gateway.store_group import GroupCommit
from gateway.store_lock import WRITE_WAIT, WriteLock

T = TypeVar("T")
_READ_ONLY = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_BACKUP_STEP = 1024  # pages copied between two progress reports (4 MiB at 4 KiB pages)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def take_lock(database: Path, *, exclusive: bool) -> int:
    """A lock on ``DATABASE.lock`` (shared: open; exclusive: restore, upgrade) or
    :class:`DatabaseRefused`. Released when the returned descriptor is closed, or the
    process ends, however it ends."""
    fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        if exclusive:
            raise DatabaseRefused(
                f"{database}: in use by another c4f-gateway process (serve, web or a "
                "command): stop it first"
            ) from None
        raise DatabaseRefused(
            f"{database}: being restored or upgraded by another process: try again when "
            "it has finished"
        ) from None
    return fd


class Store:
    def __init__(
        self,
        path: Path,
        *,
        check_version: bool = True,
        exclusive: bool = False,
        write_wait: float = WRITE_WAIT,
    ) -> None:
        """``check_version=False`` opens a database of any schema version (backup,
        restore, upgrade); ``exclusive`` fails unless no other store has it open;
        ``write_wait``: the longest a write waits for another process's (then 451)."""
        self.path = path
        self._lock = threading.RLock()
        self._conn = _connect(path)
        try:
            lock_fd = take_lock(path, exclusive=exclusive)
        except BaseException:
            self._conn.close()
            raise
        # Released by close(), or when the store is dropped unclosed (as the connection is).
        self._unlock = weakref.finalize(self, os.close, lock_fd)
        self.write_lock = WriteLock(path, write_wait)
        weakref.finalize(self, self.write_lock.close)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._ensured: set[str] = set()
        self._owner = 0  # the thread inside a write transaction, if any
        self._read_lock = threading.Lock()
        self._reader = _connect(path)
        self._reader.execute("PRAGMA query_only=ON")
        self._reader.execute("SELECT count(*) FROM sqlite_master").fetchall()  # opens its files
        self.group = GroupCommit(self.transaction)
        if path.exists():
            path.chmod(0o600)
        try:
            self.version = (
                schema_version.check(self._conn, path)
                if check_version
                else schema_version.read(self._conn)
            )
        except BaseException:
            self.close()
            raise

    def ensure(self, ddl: str) -> None:
        """Create tables and indexes (idempotent ``CREATE ... IF NOT EXISTS`` statements)."""
        if ddl in self._ensured:
            return
        with self._lock, self.write_lock.held():
            self._conn.executescript(ddl)
            self._ensured.add(ddl)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed (and fsynced) on exit, rolled back on error.
        Other processes' writers wait their turn on the write lock first
        (:mod:`gateway.store_lock`), so ``BEGIN IMMEDIATE`` rarely waits in SQLite.

        ``durable=False``: committed (every process sees it at once) but not fsynced; a
        power cut may undo it, never a later durable commit (the next fsync of the
        write-ahead log covers it). For state that is rebuilt at start anyway: delivery
        leases, which ``serve`` clears when it starts."""
        with self._lock, self.write_lock.held(), self._synchronous(durable):
            self._conn.execute("BEGIN IMMEDIATE")
            self._owner = threading.get_ident()
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
            finally:
                self._owner = 0

    @contextmanager
    def _synchronous(self, durable: bool) -> Iterator[None]:
        """``synchronous=NORMAL`` for one transaction that need not be fsynced, FULL again
        after it however it ends."""
        if durable:
            yield
            return
        self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA synchronous=FULL")

    def together(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` in a write transaction shared with others' (group commit); its
        result once the COMMIT that covers it has returned.

        ``fn`` runs in the store's commit thread, inside a savepoint: if it raises, its
        own writes are undone, the others' are committed, and its exception is raised
        here. If the COMMIT fails, it is raised to every caller whose write it held.
        Called inside a write transaction of this thread, ``fn`` is simply part of it.
        """
        if self._owner == threading.get_ident():
            return fn(self._conn)
        result: T = self.group.submit(fn).result()
        return result

    async def together_async(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`together` for async code: no thread waits for the commit."""
        result: T = await asyncio.wrap_future(self.group.submit(fn))
        return result

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        if _READ_ONLY.match(sql) and self._owner != threading.get_ident():
            with self._read_lock:
                return list(self._reader.execute(sql, params))
        with self._lock:
            return list(self._conn.execute(sql, params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def backup_to(self, target: Path, progress: Callable[[int, int], None] | None = None) -> None:
        """A consistent copy of the whole database into ``target`` (a new file), with
        SQLite's online backup API under one read transaction, so writers in other
        processes go on (WAL) and the copy is the database as of one commit. With
        ``progress(pages copied, pages)`` it copies in steps, all inside that one read
        transaction (held open here, so no step sees a later commit and none restarts)."""
        dst = sqlite3.connect(target)
        try:
            with self._lock:
                if progress is None:
                    self._conn.backup(dst)
                    return
                self._conn.execute("BEGIN")
                try:
                    self._conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
                    self._conn.backup(
                        dst,
                        pages=_BACKUP_STEP,
                        progress=lambda _status, left, total: progress(total - left, total),
                    )
                finally:
                    self._conn.execute("COMMIT")  # ends the read transaction; writes nothing
        finally:
            dst.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def close(self) -> None:
        self.group.close()  # what was handed in is committed first
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._conn.close()
            self._unlock()  # once: later calls do nothing
            self.write_lock.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    return conn
