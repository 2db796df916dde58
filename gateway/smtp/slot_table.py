"""The connection table every worker of ``serve`` shares (LIM-5, LIM-7, LIM-8 across workers).

``[limits] max_connections*`` hold for the whole gateway, not for each worker process: the
open connections are rows of one table in shared memory (a ``memfd`` mapped before the
workers are forked), each row the client address and network (as 16-byte digests), when
the connection last did something, whether it has logged in, and which worker holds it.
A worker admits a connection by counting rows under the table's lock (a POSIX record lock
on the ``memfd``: the kernel drops it when its holder dies, however it dies).

When a worker evicts the idlest connection of another worker (LIM-8), it takes that row
for the newcomer and tells the other worker through the workers' inboxes
(:class:`gateway.throttle.Peers`, which also carry failed logins); that worker finds its
connection's row gone and closes it. The supervisor clears the rows of a worker that
died. A single process (``[server] workers = 1``, tests) makes a table of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

# tag (0: free), last active (monotonic s), owner (worker index), logged in, client, network
_ROW = struct.Struct("<QdiB3x16s16s")
_LOCK_WAIT = 0.05  # rows are held for microseconds: longer means a stopped process
_POLL = 0.0002


class TableBusy(Exception):
    """The table's lock is held by a process that does not let go (stopped)."""


@dataclass(frozen=True)
class Row:
    index: int
    tag: int
    last_active: float
    owner: int
    logged_in: bool
    client: bytes
    network: bytes


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).digest()


class SlotTable:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._fd = os.memfd_create("c4f-connections", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, max(capacity, 1) * _ROW.size)
        self._map = mmap.mmap(self._fd, max(capacity, 1) * _ROW.size)
        weakref.finalize(self, _close, self._map, self._fd)

    # -- the lock ------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise TableBusy from None
                time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    # -- rows (callers hold the lock, except for the single-field writes) ------------------

    def rows(self) -> list[Row]:
        return [
            Row(i, *fields)
            for i, fields in enumerate(_ROW.iter_unpack(self._map[: self.capacity * _ROW.size]))
        ]

    def fields(self) -> Iterator[tuple[int, float, int, int, bytes, bytes]]:
        """Each row's fields in order (tag, last active, owner, logged in, client,
        network), without building a :class:`Row` for each: admitting a connection reads
        them all."""
        return _ROW.iter_unpack(self._map[: self.capacity * _ROW.size])

    def put(self, index: int, owner: int, client: bytes, network: bytes, now: float) -> int:
        """Take row ``index`` for a new connection; its tag."""
        tag = secrets.randbits(63) | 1
        _ROW.pack_into(self._map, index * _ROW.size, tag, now, owner, 0, client, network)
        return tag

    def tag(self, index: int) -> int:
        tag: int = struct.unpack_from("<Q", self._map, index * _ROW.size)[0]
        return tag

    def clear(self, index: int, tag: int) -> bool:
        """Free row ``index`` if it is still the connection ``tag``."""
        if self.tag(index) != tag:
            return False
        self._map[index * _ROW.size : (index + 1) * _ROW.size] = bytes(_ROW.size)
        return True

    def last_active(self, index: int) -> float:
        when: float = struct.unpack_from("<d", self._map, index * _ROW.size + 8)[0]
        return when

    def touch(self, index: int, tag: int, now: float) -> None:
        if self.tag(index) == tag:
            struct.pack_into("<d", self._map, index * _ROW.size + 8, now)

    def mark_logged_in(self, index: int, tag: int) -> None:
        if self.tag(index) == tag:
            struct.pack_into("<B", self._map, index * _ROW.size + 20, 1)

    def clear_owner(self, owner: int) -> int:
        """Free every row of worker ``owner`` (it died); how many there were."""
        with self.locked():
            gone = [r for r in self.rows() if r.tag and r.owner == owner]
            for r in gone:
                self.clear(r.index, r.tag)
        return len(gone)


def _close(mapped: mmap.mmap, fd: int) -> None:
    mapped.close()
    with contextlib.suppress(OSError):
        os.close(fd)
