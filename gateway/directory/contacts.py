"""Approved contacts on the shared SQLite store, with the admin audit trail.

Policy: "The email address to which is being sent to will be carefully checked."
Each entry records who approved it, when, how the address was verified, and when the
approval must be reviewed (12 months by default: the policy itself is reviewed annually,
so approvals are too). One contact and the rules it must meet are
:mod:`gateway.directory.contact`; this module keeps the list.

Every change is one SQLite transaction that also writes an audit row (who, when,
before/after) and bumps a generation number; filters reload their in-memory snapshot
when the number moves, so a change applies to the next transaction without a restart.
Contact data is personal data: sealed at rest, contacts and audit rows alike
(:mod:`gateway.directory.contacts_sealed`), and kept out of info-level logs (use
:func:`gateway.directory.lookalike.mask` for addresses).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from gateway.crypto import Keyring, SealedColumn
from gateway.directory.addresses import AddressSyntaxError, normalise
from gateway.directory.contact import (
    AUDITED,
    BatchError,
    Contact,
    ContactError,
    checked,
    default_public_domains,
)
from gateway.directory.contacts_sealed import (
    change_aad,
    contact_aad,
    ensure_schema,
    hint_login,
    insert_change,
    lookups,
    open_change,
    open_contact,
    seal_contact,
)
from gateway.directory.public_domains import PublicDomains
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.register.ledger import AdminAudit

Clock = Callable[[], datetime]


def _contact_lookup(keyring: Keyring, plain: bytes, row: sqlite3.Row) -> bytes:
    return lookups(keyring, Contact.from_fields(row["id"], json.loads(plain)).key)[0]


# What ``keys reseal register`` seals again (the register's master key seals contacts,
# :mod:`.contacts_sealed`): each contact with its lookup hash, each change row.
SEALED = [
    SealedColumn("contacts", "sealed", lambda r: contact_aad(r["id"]), ("lookup", _contact_lookup)),
    SealedColumn("contact_audit", "sealed", lambda r: change_aad(r["id"])),
]


class ContactRepository:
    def __init__(
        self,
        store: Store,
        clock: Clock = lambda: datetime.now(UTC),
        *,
        keyring: Keyring,
        register_audit: AdminAudit | None = None,
        public_domains: PublicDomains | None = None,
    ) -> None:
        """``keyring`` seals every contact and change row (the register's master key:
        :func:`gateway.directory.contacts_sealed.keyring_for`); ``public_domains``: the
        domains never approved as a whole without a reason (default: the built-in lists)."""
        self.store = store
        self.clock = clock
        self.keyring = keyring
        # Also write each change into the disclosure register's admin trail, in the same
        # transaction, so the contacts history is tamper-evident too (issue: register).
        self.register_audit = register_audit
        self.public_domains = default_public_domains() if public_domains is None else public_domains
        ensure_schema(store, keyring)

    def today(self) -> date:
        return self.clock().date()

    # -- reading -----------------------------------------------------------------------

    def all(self) -> list[Contact]:
        rows = self.store.query("SELECT id, sealed FROM contacts ORDER BY id")
        return [self._contact(r) for r in rows]

    def get(self, contact_id: int) -> Contact | None:
        rows = self.store.query("SELECT id, sealed FROM contacts WHERE id = ?", (contact_id,))
        return self._contact(rows[0]) if rows else None

    def find(self, text: str) -> Contact | None:
        """By reference (``C-012`` or ``12``), address, or whole-domain entry's domain."""
        ref = text.upper().removeprefix("C-")
        if ref.isdigit():
            return self.get(int(ref))
        keys = ["=" + text, "@" + text.lower()]
        with contextlib.suppress(AddressSyntaxError):
            keys.append(normalise(text).key)
        for key in keys:
            hashes = lookups(self.keyring, key)
            rows = self.store.query(
                f"SELECT id, sealed FROM contacts WHERE lookup IN ({_marks(hashes)})",  # noqa: S608
                hashes,
            )
            if rows:
                return self._contact(rows[0])
        return None

    def generation(self) -> int:
        rows = self.store.query("SELECT value FROM contact_meta WHERE name = 'generation'")
        return int(rows[0][0]) if rows else 0

    # -- changing (each: one transaction, one audit row, one generation bump) ---------------

    def add(self, c: Contact, actor: str) -> Contact:
        with self.store.transaction() as conn:
            return self._insert(conn, checked(c, self.public_domains), actor)

    def remove(self, contact_id: int, actor: str) -> Contact:
        with self.store.transaction() as conn:
            before = self._locked_get(conn, contact_id)
            conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
            self._audit(conn, actor, "remove", before, None)
        return before

    def update(self, contact_id: int, actor: str, action: str, **changes: Any) -> Contact:
        with self.store.transaction() as conn:
            before = self._locked_get(conn, contact_id)
            after = replace(before, **changes)
            if action != "mx-sweep":
                after = checked(after, self.public_domains)
            if any(getattr(before, k) != getattr(after, k) for k in AUDITED):
                self._write(conn, after)
                self._audit(conn, actor, action, before, after)
        return after

    def record_mx(self, contact_id: int, hosts: tuple[str, ...], at: str) -> None:
        """What the sweep saw (operational data: not audited, no reload needed)."""
        with self.store.transaction() as conn:
            c = self._locked_get(conn, contact_id)
            self._write(conn, replace(c, mx_seen=hosts, mx_checked_at=at))

    def take_hint(self, login: str, limit: int) -> bool:
        """Count one lookalike hint for ``login`` today; False once ``limit`` is used."""
        day = self.today().isoformat()
        login = hint_login(self.keyring, login)
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT used FROM contact_hints WHERE login = ? AND day = ?", (login, day)
            ).fetchone()
            used = row[0] if row else 0
            if used >= limit:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO contact_hints VALUES (?, ?, ?)", (login, day, used + 1)
            )
            conn.execute("DELETE FROM contact_hints WHERE day < ?", (day,))
        return True

    def add_all(
        self, entries: Iterable[tuple[str, Contact | ContactError]], actor: str, action: str
    ) -> list[Contact]:
        """Add or change every entry or none, in one transaction (a CSV import).

        Each entry has a label (``line 3``) and is either a contact to check and write or the
        error found while reading it; :class:`BatchError` lists every problem, labelled. A
        contact with no id is added; one with an id replaces that contact (one audit row and
        one register entry, in this transaction, only if an audited field differs).
        """
        problems: list[str] = []
        added: list[Contact] = []
        with self.store.transaction() as conn:
            for label, entry in entries:
                if isinstance(entry, ContactError):
                    problems.append(f"{label}: {entry}")
                    continue
                try:
                    if entry.id:
                        # What the sweep saw since the entry was read stays as it is now.
                        before = self._locked_get(conn, entry.id)
                        kept = replace(entry, **before.sweep_fields())
                        after = checked(kept, self.public_domains)
                        if before.audit_view() != after.audit_view():
                            self._write(conn, after)
                            self._audit(conn, actor, action, before, after)
                        added.append(after)
                    else:
                        added.append(
                            self._insert(conn, checked(entry, self.public_domains), actor, action)
                        )
                except ContactError as exc:
                    problems.append(f"{label}: {exc}")
            if problems:
                raise BatchError(problems)  # rolls the transaction back
        return added

    # -- audit -------------------------------------------------------------------------

    def history(self, contact_id: int | None = None) -> list[dict[str, Any]]:
        """Change rows, oldest first: at, actor, os_user, action, contact_id, and the
        entry before and after as JSON text (None for an add's before, a remove's after)."""
        if contact_id is None:
            rows = self.store.query("SELECT * FROM contact_audit ORDER BY id")
        else:
            rows = self.store.query(
                "SELECT * FROM contact_audit WHERE contact_id = ? ORDER BY id", (contact_id,)
            )
        return [open_change(self.keyring, r) for r in rows]

    # -- internals ---------------------------------------------------------------------

    def _insert(
        self, conn: sqlite3.Connection, c: Contact, actor: str, action: str = "add"
    ) -> Contact:
        self._check_free(conn, c)
        # The row's id is what its sealed fields are bound to: insert, then seal.
        cur = conn.execute(
            "INSERT INTO contacts (lookup, sealed) VALUES (?, X'')",
            (lookups(self.keyring, c.key)[0],),
        )
        added = replace(c, id=int(cur.lastrowid or 0))
        self._write(conn, added)
        self._audit(conn, actor, action, None, added)
        return added

    def _check_free(self, conn: sqlite3.Connection, c: Contact) -> None:
        """No other contact has ``c``'s lookup key (under any key of the keyring)."""
        hashes = lookups(self.keyring, c.key)
        dup = conn.execute(
            f"SELECT id FROM contacts WHERE lookup IN ({_marks(hashes)}) AND id != ?",  # noqa: S608
            (*hashes, c.id),
        ).fetchone()
        if dup:
            raise ContactError(f"{c.address} is already approved as C-{dup[0]:03d}")

    def _write(self, conn: sqlite3.Connection, c: Contact) -> None:
        """Seal ``c`` into its row; the lookup hash follows the current key."""
        self._check_free(conn, c)
        conn.execute(
            "UPDATE contacts SET lookup = ?, sealed = ? WHERE id = ?",
            (
                lookups(self.keyring, c.key)[0],
                seal_contact(self.keyring, c.id, c.fields_to_seal()),
                c.id,
            ),
        )

    def _contact(self, row: sqlite3.Row) -> Contact:
        cid = int(row["id"])
        return Contact.from_fields(cid, open_contact(self.keyring, cid, row["sealed"]))

    def _locked_get(self, conn: sqlite3.Connection, contact_id: int) -> Contact:
        row = conn.execute("SELECT id, sealed FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        if row is None:
            raise ContactError(f"no contact C-{contact_id:03d}")
        return self._contact(row)

    def _audit(
        self,
        conn: sqlite3.Connection,
        actor: str,
        action: str,
        before: Contact | None,
        after: Contact | None,
    ) -> None:
        target = after or before
        assert target is not None
        insert_change(
            conn,
            self.keyring,
            self.clock().isoformat(timespec="seconds"),
            action,
            target.id,
            {
                "actor": actor,
                "os_user": os_user(),
                "before": before.audit_view() if before else None,
                "after": after.audit_view() if after else None,
            },
        )
        conn.execute(
            "INSERT INTO contact_meta VALUES ('generation', 1) ON CONFLICT(name) "
            "DO UPDATE SET value = value + 1"
        )
        if self.register_audit is not None:
            self.register_audit(
                conn,
                actor,
                f"contact {action}",
                {
                    "contact_id": target.id,
                    "before": before.audit_view() if before else None,
                    "after": after.audit_view() if after else None,
                },
            )


def _marks(values: list[bytes]) -> str:
    return ",".join("?" * len(values))


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
