"""Connection slots, shared by every listener (LIM-5, LIM-7, LIM-8).

A connection is admitted while there is room overall, for its client address and for its
client network (a /24 for IPv4, a /64 for IPv6: one provider's customer, or one attacker
renting a handful of neighbouring addresses). Postfix answers a full connection table by
shortening its timeouts (postconf(5), "stress"); here, when every slot is taken, the
connection idle longest without logging in is closed at once to admit the newcomer. A
logged-in session is never closed for this, so idle connections alone cannot lock staff
out.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.settings import Limits

# The network a client address belongs to (LIM-7): what one site or provider customer
# usually holds; IPv6 end sites get at least a /64 (RFC 6177).
IPV4_PREFIX = 24
IPV6_PREFIX = 64


def network_of(client: str) -> str:
    """The client's network as text ("192.0.2.0/24"); a non-IP peer is its own network."""
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # a dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d
    prefix = IPV4_PREFIX if addr.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


@dataclass(eq=False)
class Slot:
    """One admitted connection: who, when it last did something, and how to close it."""

    client: str
    network: str
    last_active: float
    evict: Callable[[], None]
    logged_in: bool = False


@dataclass
class ConnectionLimiter:
    total_limit: int
    per_client_limit: int
    per_network_limit: int
    _slots: list[Slot] = field(default_factory=list)
    _per_client: Counter[str] = field(default_factory=Counter)
    _per_network: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, limits: Limits) -> ConnectionLimiter:
        return cls(
            limits.max_connections,
            limits.max_connections_per_client,
            limits.max_connections_per_network,
        )

    @property
    def total(self) -> int:
        """Connections open now."""
        return len(self._slots)

    def admit(self, client: str, now: float, evict: Callable[[], None]) -> Slot | None:
        """A slot for a new connection, or None (refuse it: 421). ``evict`` closes this
        connection if a later newcomer needs its slot."""
        network = network_of(client)
        if self._per_client[client] >= self.per_client_limit:
            return None
        if self._per_network[network] >= self.per_network_limit:
            return None
        if len(self._slots) >= self.total_limit:
            idle = [s for s in self._slots if not s.logged_in]
            if not idle:
                return None
            victim = min(idle, key=lambda s: s.last_active)
            self.release(victim)
            victim.evict()
        slot = Slot(client, network, now, evict)
        self._slots.append(slot)
        self._per_client[client] += 1
        self._per_network[network] += 1
        return slot

    def release(self, slot: Slot) -> None:
        """Give the slot back; a second release (evicted, then closed) does nothing."""
        if slot not in self._slots:
            return
        self._slots.remove(slot)
        for counter, key in ((self._per_client, slot.client), (self._per_network, slot.network)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
