"""The approved-contact list in memory, as the recipient filters read it.

:class:`ContactCache` hands out a :class:`Snapshot` and reloads it when the repository's
generation number moves, so a change made by the CLI or the console applies to the next
transaction without a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from gateway.crypto import Keyring
from gateway.directory.addresses import Address
from gateway.directory.contact import Contact
from gateway.directory.contacts import Clock, ContactRepository
from gateway.directory.lookalike import Candidate, LookalikeIndex
from gateway.store import Store


class Snapshot:
    """The contact list in memory, as one filter call sees it."""

    def __init__(self, generation: int, contacts: Iterable[Contact]) -> None:
        self.generation = generation
        self.contacts = list(contacts)
        self.by_key: dict[str, Contact] = {}  # plain addresses, by case-insensitive key
        self.exact: dict[str, Contact] = {}  # unusual shapes, by the exact approved string
        self.domains: dict[str, Contact] = {}  # whole-domain entries
        for c in self.contacts:
            if c.kind == "domain":
                self.domains[c.address] = c
            elif c.unusual:
                self.exact[c.address] = c
            else:
                self.by_key[Contact.key_for(c.kind, c.address, False)] = c
        self._lookalikes: LookalikeIndex | None = None

    def mailbox_of(self, addr: Address) -> Contact | None:
        """The entry of the mailbox a sub-address reaches, when it has none of its own.

        ``person+tag@domain`` is delivered to ``person@domain`` (RFC 5233; Microsoft 365,
        Google), so that entry's rules hold for it (REL-5); an entry made for the
        sub-address itself is judged on its own (None here).
        """
        if addr.mailbox_key == addr.key or addr.key in self.by_key:
            return None
        return self.by_key.get(addr.mailbox_key)

    @property
    def lookalikes(self) -> LookalikeIndex:
        if self._lookalikes is None:  # built on the first refusal after a change
            self._lookalikes = LookalikeIndex(
                Candidate(
                    c.id,
                    c.address,
                    None if c.kind == "domain" else c.address.rpartition("@")[0],
                    c.domain,
                    c.display_name,
                )
                for c in self.contacts
                if not c.unusual
            )
        return self._lookalikes


class ContactCache:
    """Hands out the current :class:`Snapshot`, reloading after any change."""

    def __init__(
        self, store: Store, keyring: Keyring, clock: Clock = lambda: datetime.now(UTC)
    ) -> None:
        """``keyring`` opens the sealed contacts (the register's master key)."""
        self.repo = ContactRepository(store, clock, keyring=keyring)
        self._snapshot = Snapshot(-1, ())

    def current(self) -> Snapshot:
        generation = self.repo.generation()
        if generation != self._snapshot.generation:
            self._snapshot = Snapshot(generation, self.repo.all())
        return self._snapshot
