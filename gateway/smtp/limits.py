"""Connection slots, shared by every listener and every worker process of ``serve``
(LIM-5, LIM-7, LIM-8): the connections are counted in :mod:`gateway.smtp.slot_table`.

A connection is admitted while there is room overall, for its client address and for its
client network (a /24 for IPv4, a /64 for IPv6: one provider's customer, or one attacker
renting a handful of neighbouring addresses). Postfix answers a full connection table by
shortening its timeouts (postconf(5), "stress"); here, when every slot is taken, the
connection idle longest without logging in is closed at once to admit the newcomer. A
logged-in session is never closed for this, so idle connections alone cannot lock staff
out. When the idlest is another worker's, that worker is woken to close it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from gateway.settings import Limits
from gateway.smtp.slot_table import SlotTable, TableBusy, digest
from gateway.throttle import Peers

log = structlog.get_logger("gateway.smtp")

# The network a client address belongs to (LIM-7): what one site or provider customer
# usually holds; IPv6 end sites get at least a /64 (RFC 6177).
IPV4_PREFIX = 24
IPV6_PREFIX = 64


@functools.lru_cache(maxsize=1024)
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
    """One admitted connection: who, its row in the table, and how to close it."""

    client: str
    network: str
    index: int
    tag: int
    evict: Callable[[], None]
    table: SlotTable
    _logged_in: bool = False

    @property
    def last_active(self) -> float:
        return self.table.last_active(self.index)

    @last_active.setter
    def last_active(self, now: float) -> None:
        self.table.touch(self.index, self.tag, now)

    @property
    def logged_in(self) -> bool:
        return self._logged_in

    @logged_in.setter
    def logged_in(self, value: bool) -> None:
        if value and not self._logged_in:
            self.table.mark_logged_in(self.index, self.tag)
        self._logged_in = value


class ConnectionLimiter:
    """Admits connections against the limits, counting every worker's (``table``)."""

    def __init__(
        self,
        total_limit: int,
        per_client_limit: int,
        per_network_limit: int,
        table: SlotTable | None = None,
        peers: Peers | None = None,
    ) -> None:
        """``table`` and ``peers``: the workers' shared table, and their inboxes, through
        which one is told that another took its connection's slot (:meth:`woken`)."""
        self.total_limit = total_limit
        self.per_client_limit = per_client_limit
        self.per_network_limit = per_network_limit
        self.table = table if table is not None else SlotTable(total_limit)
        self.peers = peers
        self.worker = peers.index if peers is not None else 0  # the owner of our rows
        self._mine: dict[int, Slot] = {}  # row index -> this process's connection

    @classmethod
    def from_settings(
        cls, limits: Limits, table: SlotTable | None = None, peers: Peers | None = None
    ) -> ConnectionLimiter:
        return cls(
            limits.max_connections,
            limits.max_connections_per_client,
            limits.max_connections_per_network,
            table,
            peers,
        )

    @property
    def total(self) -> int:
        """Connections open now, in every worker."""
        return sum(1 for r in self.table.rows() if r.tag)

    def admit(self, client: str, now: float, evict: Callable[[], None]) -> Slot | None:
        """A slot for a new connection, or None (refuse it: 421). ``evict`` closes this
        connection if a later newcomer needs its slot."""
        network = network_of(client)
        key, net = digest(client), digest(network)
        try:
            with self.table.locked():
                index, victim = self._room(key, net)
                if index is None:
                    return None
                tag = self.table.put(index, self.worker, key, net, now)
        except TableBusy:
            log.error("connection_table_busy", client=client)
            return None
        if victim is not None:
            self._evicted(index, victim)
        slot = Slot(client, network, index, tag, evict, self.table)
        self._mine[index] = slot
        return slot

    def _room(self, key: bytes, net: bytes) -> tuple[int | None, int | None]:
        """The row a newcomer from ``key`` in ``net`` may take, and the owner of the
        connection it evicts (None: a free row); ``(None, None)`` when it must be refused.
        One pass over the table, under its lock."""
        used = clients = networks = 0
        free = None
        idlest: tuple[float, int, int] | None = None  # last active, row, owner
        for i, (tag, last, owner, logged_in, client, network) in enumerate(self.table.fields()):
            if not tag:
                if free is None and i < self.total_limit:
                    free = i
                continue
            used += 1
            clients += client == key
            networks += network == net
            if not logged_in and (idlest is None or last < idlest[0]):
                idlest = (last, i, owner)
        if clients >= self.per_client_limit or networks >= self.per_network_limit:
            return None, None
        if used < self.total_limit and free is not None:
            return free, None
        if idlest is None:
            return None, None  # every connection is logged in: none is evicted
        return idlest[1], idlest[2]

    def release(self, slot: Slot) -> None:
        """Give the slot back; a second release (evicted, then closed) does nothing."""
        if self._mine.get(slot.index) is slot:
            del self._mine[slot.index]
        try:
            with self.table.locked():
                self.table.clear(slot.index, slot.tag)
        except TableBusy:
            # A stopped process holds the table: try again shortly rather than leak it.
            log.error("connection_table_busy", client=slot.client)
            asyncio.get_running_loop().call_later(0.5, self.release, slot)

    def _evicted(self, index: int, owner: int) -> None:
        """Row ``index`` went to a newcomer: close the connection that had it."""
        if owner != self.worker:
            if self.peers is not None:
                self.peers.wake(owner)
            return
        slot = self._mine.pop(index, None)
        if slot is not None:
            slot.evict()

    def woken(self) -> None:
        """Another worker took rows of this worker's: close the connections that had them."""
        for index, slot in list(self._mine.items()):
            if self.table.tag(index) != slot.tag:
                del self._mine[index]
                slot.evict()
