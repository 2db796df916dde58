"""Failed-login throttling per client address and per account (AUTH-1).

In memory, per process: a restart forgets, which only ever loosens the throttle for one
window. Per account the limit holds even for the right password (NIST SP 800-63B 5.2.2).
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
        self._clients: dict[str, deque[float]] = defaultdict(deque)
        self._accounts: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, table: dict[str, deque[float]], key: str) -> int:
        q = table.get(key)
        if q is None:
            return 0
        cutoff = self.clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del table[key]
            return 0
        return len(q)

    def blocked(self, client: str, account: str) -> str:
        """'' if a login may be tried now; otherwise which limit blocks it."""
        if self._recent(self._clients, client) >= self.per_client:
            return "client"
        if account and self._recent(self._accounts, account.lower()) >= self.per_account:
            return "account"
        return ""

    def failed(self, client: str, account: str) -> None:
        now = self.clock()
        self._clients[client].append(now)
        if account:
            self._accounts[account.lower()].append(now)

    def succeeded(self, client: str, account: str) -> None:
        self._clients.pop(client, None)
        self._accounts.pop(account.lower(), None)
