"""The database's writer lock across processes: ``flock`` on ``DATABASE.write-lock``.

SQLite lets one connection write at a time; a second one that finds the database locked
sleeps in its busy handler (1 to 100 ms between tries) and may lose the race again when
it wakes. With several ``serve`` workers (and the console, and commands) writing the same
file, that sleeping made every commit slower than a single process's. Here a writer
first takes an exclusive ``flock`` on the lock file: the kernel wakes a waiting process
the moment the holder lets go, so writers take turns without sleeping, and ``BEGIN
IMMEDIATE`` then finds the database free.

The wait is bounded: a process that holds the lock and stops (SIGSTOP, a hung disk) must
not hold up every other writer for ever. The blocking ``flock`` runs in a thread of its
own (``store-write-lock``) while the writer waits for it at most ``wait`` seconds, then
raises :class:`WriteLockTimeout` (the SMTP session answers ``451 4.3.0``). If the lock
comes after the writer gave up, the thread lets it go at once, or hands it to the next
writer of this process already waiting. A process that ends, however it ends, releases
its lock (the kernel closes its descriptor).

One lock object per store; its caller holds the store's own thread lock, so at most one
thread of a process waits for or holds it at a time (``flock`` locks belong to the open
file, which every thread of the process shares).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from sqlite3 import OperationalError

# The longest a writer waits for another process's transaction before it fails (451).
WRITE_WAIT = 10.0

_FREE, _TAKING, _HELD = "free", "taking", "held"


class WriteLockTimeout(OperationalError):
    """Another process has held the database's write lock longer than the bound."""


def write_lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".write-lock")


class WriteLock:
    def __init__(self, database: Path, wait: float = WRITE_WAIT) -> None:
        self.database = database
        self.wait = wait
        self._fd = os.open(write_lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
        self._cond = threading.Condition()
        self._state = _FREE
        self._wanted = False  # a writer of this process is waiting for the taker thread
        self._closed = False
        self._owner = 0  # the thread holding it, which may take it again (nested)
        self._depth = 0
        self.waits = 0  # times a writer had to wait for another process (tests, benchmarks)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        """Take the lock, waiting at most :attr:`wait` seconds for another process."""
        me = threading.get_ident()
        with self._cond:
            if self._closed:
                raise OperationalError(f"{self.database}: the store is closed")
            if self._state == _HELD and self._owner == me:
                self._depth += 1
                return
            if self._state == _FREE:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._state = _TAKING
                    threading.Thread(
                        target=self._take, name="store-write-lock", daemon=True
                    ).start()
                else:
                    self._state, self._owner, self._depth = _HELD, me, 1
                    return
            # _TAKING: the thread is blocked in flock (for us, or for a writer that gave up).
            self.waits += 1
            self._wanted = True
            try:
                if not self._cond.wait_for(lambda: self._state == _HELD, self.wait):
                    raise WriteLockTimeout(
                        f"{self.database}: another process has held the write lock for "
                        f"more than {self.wait:g} s"
                    )
                self._owner, self._depth = me, 1
            finally:
                self._wanted = False

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth > 0:
                return
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._state, self._owner = _FREE, 0

    def close(self) -> None:
        """Close the lock file (again: nothing). A taker thread still blocked (another
        process stopped while holding the lock) ends when that process goes on or ends."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._state != _TAKING:
                os.close(self._fd)

    def _take(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks until the other process lets go
        with self._cond:
            if self._wanted and not self._closed:
                self._state = _HELD
                self._cond.notify_all()
                return
            # The writer gave up meanwhile: let the other processes have it.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._state = _FREE
            if self._closed:
                os.close(self._fd)
