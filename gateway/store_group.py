"""Group commit: the thread that commits the writes sessions hand in together.

Each write runs in a savepoint of one transaction shared with the writes handed in while
the last commit was on its way to disk (or within :data:`GROUP_WINDOW` under load), so
one fsync covers them all; each caller hears only after the COMMIT that covers its
write, and if that COMMIT fails, every caller whose write it held hears of it. Used by
:class:`gateway.store.Store` (``together``, ``together_async``).
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

# Under load, a commit waits this long (or for this many writes) for others to share it.
GROUP_WINDOW = 0.003
GROUP_MAX = 64
GROUP_IDLE = 10.0  # seconds without writes after which the commit thread ends


@dataclass
class _Write:
    fn: Callable[[sqlite3.Connection], Any]
    done: concurrent.futures.Future[Any]


def _each_in_a_savepoint(conn: sqlite3.Connection, writes: list[_Write]) -> list[tuple[bool, Any]]:
    """Each write's (True, result) or (False, exception); a write that raises is undone.
    A function of its own: no loop variable outlives it holding the last write."""
    results: list[tuple[bool, Any]] = []
    for write in writes:
        conn.execute("SAVEPOINT together")
        try:
            results.append((True, write.fn(conn)))
        except Exception as exc:
            conn.execute("ROLLBACK TO together")
            results.append((False, exc))
        conn.execute("RELEASE together")
    return results


class GroupCommit:
    """A thread that commits the writes handed to it together: one transaction and one
    fsync for every write that arrived while the last commit was on its way to disk, or
    within :data:`GROUP_WINDOW` under load. With a single session nothing waits.

    ``commits`` and ``writes`` count what it has committed (for benchmarks and tests).
    """

    def __init__(
        self, transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]
    ) -> None:
        """``transaction()``: the store's write transaction (its connection)."""
        self.transaction = transaction
        self._cond = threading.Condition()
        self._queue: list[_Write] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self._last_batch = 0
        self.commits = 0
        self.writes = 0

    def waiting(self) -> int:
        """Writes handed in and not yet taken into a commit."""
        with self._cond:
            return len(self._queue)

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> concurrent.futures.Future[Any]:
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            if self._closing:
                raise sqlite3.ProgrammingError("the store is closed")
            self._queue.append(_Write(fn, done))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="store-group-commit", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return done

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    if not self._cond.wait(GROUP_IDLE) and not self._queue:
                        # Idle: end, so a store dropped unclosed is not kept alive (with its
                        # lock on DATABASE.lock) by this thread; the next write starts one.
                        self._thread = None
                        return
                if not self._queue:
                    return
                if self._last_batch > 1 or len(self._queue) > 1:
                    deadline = time.monotonic() + GROUP_WINDOW
                    while len(self._queue) < GROUP_MAX and not self._closing:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                batch, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
            self._last_batch = len(batch)
            # A caller that gave up (its session ended) before its turn is left out.
            taken = [w for w in batch if w.done.set_running_or_notify_cancel()]
            del batch
            self._commit(taken)

    def _commit(self, taken: list[_Write]) -> None:
        """Commit the writes in ``taken`` in one transaction, then tell each caller.

        ``taken`` is emptied before anyone is told: a write holds its message and its
        sealed copy, and the first caller told may go on at once (this thread gives up the
        GIL to wake it) to deliver that message, while this thread would still hold them:
        the message twice in memory. What a write returns must not hold it either."""
        if not taken:
            return
        try:
            with self.transaction() as conn:
                results = _each_in_a_savepoint(conn, taken)
        except BaseException as exc:
            # Nothing of this batch is on disk: every caller hears of it.
            results = [(False, exc)] * len(taken)
        else:
            self.commits += 1
            self.writes += sum(ok for ok, _ in results)
        dones = [write.done for write in taken]
        taken.clear()
        for done, (ok, value) in zip(dones, results, strict=True):
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)
