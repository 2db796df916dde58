"""Failed-login throttling per client address and per account (AUTH-1, AUTH-6).

In memory, per process: a restart forgets, which only ever loosens the throttle for one
window. The worker processes of ``serve`` (:mod:`gateway.supervisor`) tell each other
every failure and success (:class:`Peers`), so the limits hold for the client and the
account across all of them, whichever worker takes each connection. Per account the
limit holds even for the right password (NIST SP 800-63B 5.2.2).

A success clears that account's failures, and that account's failures from this client,
but nothing else (AUTH-6): the address keeps every guess it made at other accounts, so
logging in to an account of one's own between guesses does not reset the throttle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence


class LoginThrottle:
    def __init__(
        self,
        *,
        per_client: int,
        per_account: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.per_account = per_account
        self.window = window
        self.clock = clock
        # Per client: (when, account) of each failure, so a success can drop its own.
        self._clients: dict[str, deque[tuple[float, str]]] = defaultdict(deque)
        self._accounts: dict[str, deque[float]] = defaultdict(deque)
        # The other workers' inboxes, told of each failure and success (serve only).
        self.peers: Peers | None = None
        self._hearing = False

    def _recent_client(self, client: str) -> int:
        q = self._clients.get(client)
        if q is None:
            return 0
        cutoff = self.clock() - self.window
        while q and q[0][0] < cutoff:
            q.popleft()
        if not q:
            del self._clients[client]
        return len(q)

    def _recent_account(self, account: str) -> int:
        q = self._accounts.get(account)
        if q is None:
            return 0
        cutoff = self.clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del self._accounts[account]
        return len(q)

    def blocked(self, client: str, account: str) -> str:
        """'' if a login may be tried now; otherwise which limit blocks it."""
        if self._recent_client(client) >= self.per_client:
            return "client"
        if account and self._recent_account(account.lower()) >= self.per_account:
            return "account"
        return ""

    def failed(self, client: str, account: str) -> None:
        now = self.clock()
        self._clients[client].append((now, account.lower()))
        if account:
            self._accounts[account.lower()].append(now)
        if self.peers is not None and not self._hearing:
            self.peers.tell("failed", client, account, now)

    def succeeded(self, client: str, account: str) -> None:
        key = account.lower()
        if self.peers is not None and not self._hearing and self._counts(client, key):
            # Every failure is told to every worker: when none is counted here for this
            # login, there is none to clear there either (most logins), and no one is told.
            self.peers.tell("succeeded", client, account, self.clock())
        self._accounts.pop(key, None)
        q = self._clients.get(client)
        if q is not None:
            kept = deque(entry for entry in q if entry[1] != key)
            if kept:
                self._clients[client] = kept
            else:
                del self._clients[client]

    def _counts(self, client: str, key: str) -> bool:
        """Whether a failure of login ``key`` (lower case) is counted, from any client."""
        return key in self._accounts or any(e[1] == key for e in self._clients.get(client, ()))

    def heard(self, kind: str, client: str, account: str, at: float) -> None:
        """Another worker's failure or success at ``at`` (its clock: the system's
        monotonic one), as if it had happened here now (a subclass that counts failures
        counts these too), not told on again; one older than the window is past."""
        if self.clock() - at > self.window:
            return
        self._hearing = True
        try:
            (self.failed if kind == "failed" else self.succeeded)(client, account)
        finally:
            self._hearing = False


class Peers:
    """The worker processes' one channel to each other: an inbox (a datagram socket pair)
    per worker, made by the supervisor before it starts any, so every worker (and a
    restarted one) has them all. A worker reads its own inbox and writes to the others':
    every failed and successful login to all of them, and "evicted" to the one worker
    whose connection's slot it took (:mod:`gateway.smtp.limits`). A message that does
    not fit (a worker that is down and far behind) is dropped, as a restart forgets (an
    eviction so lost closes its idle connection at the next one, or at its timeout)."""

    def __init__(self, pairs: Sequence[tuple[socket.socket, socket.socket]], index: int) -> None:
        self.index = index
        self.inbox = pairs[index][0]
        self.outboxes = [pair[1] for pair in pairs]

    @staticmethod
    def pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
        made = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(count)]
        for pair in made:
            for end in pair:
                end.setblocking(False)
        return made

    def tell(self, kind: str, client: str, account: str, at: float) -> None:
        data = json.dumps([kind, client, account, at]).encode()
        for worker in range(len(self.outboxes)):
            self._send(worker, data)

    def wake(self, worker: int) -> None:
        """Tell ``worker`` that another took one of its connections' slots."""
        self._send(worker, _EVICTED)

    def _send(self, worker: int, data: bytes) -> None:
        if worker != self.index and 0 <= worker < len(self.outboxes):
            with contextlib.suppress(OSError):
                self.outboxes[worker].send(data)

    def listen(self, throttle: LoginThrottle, evicted: Callable[[], None]) -> None:
        """Apply what the others tell, from the running event loop, until :meth:`close`:
        logins to ``throttle``; ``evicted()`` when one took a slot of this worker's."""
        throttle.peers = self
        asyncio.get_running_loop().add_reader(self.inbox.fileno(), self._read, throttle, evicted)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.inbox.fileno())

    def _read(self, throttle: LoginThrottle, evicted: Callable[[], None]) -> None:
        woken = False
        while True:
            try:
                data = self.inbox.recv(65536)
            except OSError:  # nothing more for now
                break
            if data == _EVICTED:
                woken = True
                continue
            try:
                kind, client, account, at = json.loads(data)
                when = float(at)
            except (ValueError, TypeError):  # only our own processes write here
                continue
            if isinstance(client, str) and isinstance(account, str):
                throttle.heard(str(kind), client, account, when)
        if woken:  # once, however many were taken: it looks at every slot
            evicted()


_EVICTED = b'"evicted"'
