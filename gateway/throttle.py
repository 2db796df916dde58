"""Failed-login throttling per client address and per account (AUTH-1, AUTH-6).

In memory, per process: a restart forgets, which only ever loosens the throttle for one
window. Per account the limit holds even for the right password (NIST SP 800-63B 5.2.2).

A success clears that account's failures, and that account's failures from this client,
but nothing else (AUTH-6): the address keeps every guess it made at other accounts, so
logging in to an account of one's own between guesses does not reset the throttle.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


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

    def succeeded(self, client: str, account: str) -> None:
        key = account.lower()
        self._accounts.pop(key, None)
        q = self._clients.get(client)
        if q is not None:
            kept = deque(entry for entry in q if entry[1] != key)
            if kept:
                self._clients[client] = kept
            else:
                del self._clients[client]
