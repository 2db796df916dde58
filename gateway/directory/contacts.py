"""Approved contacts on the shared SQLite store, with the admin audit trail.

Policy: "The email address to which is being sent to will be carefully checked."
Each entry records who approved it, when, how the address was verified, and when the
approval must be reviewed (12 months by default: the policy itself is reviewed annually,
so approvals are too). Whole-domain entries exist only when added explicitly as such.

Every change is one SQLite transaction that also writes an audit row (who, when,
before/after) and bumps a generation number; filters reload their in-memory snapshot
when the number moves, so a change applies to the next transaction without a restart.
Contact data is personal data: keep full addresses out of info-level logs (use
:func:`gateway.directory.lookalike.mask`).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from gateway.directory.addresses import AddressSyntaxError, normalise
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.register.ledger import AdminAudit

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('address', 'domain')),
    address TEXT NOT NULL,           -- as approved; the bare domain for whole-domain entries
    key TEXT NOT NULL UNIQUE,        -- lookup key (see Contact.key_for)
    display_name TEXT NOT NULL, organisation TEXT NOT NULL, role TEXT NOT NULL,
    approved_by TEXT NOT NULL, approved_on TEXT NOT NULL, verified_how TEXT NOT NULL,
    review_due TEXT NOT NULL,        -- ISO date: the approval lapses on this day
    notes TEXT NOT NULL,
    unusual INTEGER NOT NULL,        -- 1: an odd shape approved exactly as written
    not_fax_by TEXT NOT NULL,        -- admin who attested this is not a fax route
    not_fax_on TEXT NOT NULL,
    mx_hosts TEXT,                   -- JSON: MX hosts accepted by an admin (baseline)
    mx_seen TEXT,                    -- JSON: MX hosts at the last sweep
    mx_checked_at TEXT NOT NULL DEFAULT '',
    mx_flag TEXT NOT NULL DEFAULT '', -- set: DNS says mail goes to a fax service (refused)
    requires_approval INTEGER NOT NULL DEFAULT 0 -- 1: messages wait for a line manager
);
CREATE TABLE IF NOT EXISTS contact_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, actor TEXT NOT NULL, os_user TEXT NOT NULL, action TEXT NOT NULL,
    contact_id INTEGER NOT NULL, before TEXT, after TEXT
);
CREATE TABLE IF NOT EXISTS contact_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contact_hints (
    login TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (login, day)
);
"""

# Columns added after the first release: (name, definition) for databases created before.
_ADDED_COLUMNS = [
    ("requires_approval", "INTEGER NOT NULL DEFAULT 0"),
]
# What an admin decides about an entry: each change to these is audited (before/after).
_AUDITED = tuple(
    "kind address display_name organisation role approved_by approved_on verified_how "  # noqa: SIM905 (word list)
    "review_due notes unusual not_fax_by not_fax_on requires_approval mx_hosts mx_flag".split()
)
Clock = Callable[[], datetime]


class ContactError(ValueError):
    """A contact change that cannot be made; ``str(exc)`` says why."""


class BatchError(ContactError):
    """Entries of an all-or-nothing batch that cannot be added (``problems``: which, why)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} bad row(s); nothing imported")
        self.problems = problems


@dataclass(frozen=True)
class Contact:
    id: int
    kind: Literal["address", "domain"]
    address: str
    display_name: str
    organisation: str
    role: str
    approved_by: str
    approved_on: str
    verified_how: str
    review_due: str
    notes: str = ""
    unusual: bool = False
    not_fax_by: str = ""
    not_fax_on: str = ""
    mx_hosts: tuple[str, ...] | None = None
    mx_seen: tuple[str, ...] | None = None
    mx_checked_at: str = ""
    mx_flag: str = ""
    # Messages to this contact are held until a line manager approves them (filters/approval).
    requires_approval: bool = False

    @property
    def ref(self) -> str:
        return f"C-{self.id:03d}"

    @property
    def domain(self) -> str:
        return self.address if self.kind == "domain" else self.address.rpartition("@")[2].lower()

    def expired(self, today: date) -> bool:
        return today >= date.fromisoformat(self.review_due)

    @staticmethod
    def key_for(kind: str, address: str, unusual: bool) -> str:
        if kind == "domain":
            return "@" + address
        return "=" + address if unusual else normalise(address).key

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Contact:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["unusual"] = bool(values["unusual"])
        values["requires_approval"] = bool(values["requires_approval"])
        for name in ("mx_hosts", "mx_seen"):
            values[name] = None if values[name] is None else tuple(json.loads(values[name]))
        return cls(**values)

    def audit_view(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in _AUDITED}


def review_date(approved: date, months: int = 12) -> date:
    year, month = divmod(approved.month - 1 + months, 12)
    for day in (approved.day, 30, 29, 28):
        try:
            return approved.replace(year=approved.year + year, month=month + 1, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def checked(c: Contact) -> Contact:
    """Validate a new or changed entry; returns it in stored form or raises ContactError."""
    for name in ("organisation", "approved_by", "verified_how"):
        if not getattr(c, name).strip():
            raise ContactError(f"{name.replace('_', ' ')} is required")
    try:
        approved, due = date.fromisoformat(c.approved_on), date.fromisoformat(c.review_due)
    except ValueError:
        raise ContactError("dates must be YYYY-MM-DD") from None
    if due <= approved:
        raise ContactError("review date must be after the approval date")
    if c.kind == "domain":
        addr = _parse("postmaster@" + c.address.strip(), "domain")
        if not addr.plain:
            raise ContactError(f"domain: {', '.join(addr.unusual) or 'not in normal form'}")
        return replace(c, address=addr.domain, unusual=False)
    if not c.display_name.strip():
        raise ContactError("display name is required")
    addr = _parse(c.address, "address")
    if addr.unusual and not c.unusual:
        raise ContactError(
            f"address has an unusual form ({', '.join(addr.unusual)}); "
            "approve it exactly as written with --allow-unusual"
        )
    if addr.unusual:
        return c
    if addr.rewritten:
        raise ContactError("address is not in normal form")
    return replace(c, address=f"{addr.local}@{addr.domain}", unusual=False)


def _parse(text: str, what: str) -> Any:
    try:
        return normalise(text)
    except AddressSyntaxError as exc:
        raise ContactError(f"{what} is not valid: {exc}") from None


class ContactRepository:
    def __init__(
        self,
        store: Store,
        clock: Clock = lambda: datetime.now(UTC),
        *,
        register_audit: AdminAudit | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # Also write each change into the disclosure register's admin trail, in the same
        # transaction, so the contacts history is tamper-evident too (issue: register).
        self.register_audit = register_audit
        store.ensure(SCHEMA)
        have = {r["name"] for r in store.query("PRAGMA table_info(contacts)")}
        for name, definition in _ADDED_COLUMNS:
            if name not in have:
                store.execute(f"ALTER TABLE contacts ADD COLUMN {name} {definition}")

    def today(self) -> date:
        return self.clock().date()

    # -- reading -----------------------------------------------------------------------

    def all(self) -> list[Contact]:
        return [Contact.from_row(r) for r in self.store.query("SELECT * FROM contacts ORDER BY id")]

    def get(self, contact_id: int) -> Contact | None:
        rows = self.store.query("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        return Contact.from_row(rows[0]) if rows else None

    def find(self, text: str) -> Contact | None:
        """By reference (``C-012`` or ``12``), address, or whole-domain entry's domain."""
        ref = text.upper().removeprefix("C-")
        if ref.isdigit():
            return self.get(int(ref))
        keys = ["=" + text, "@" + text.lower()]
        with contextlib.suppress(AddressSyntaxError):
            keys.append(normalise(text).key)
        for key in keys:
            rows = self.store.query("SELECT * FROM contacts WHERE key = ?", (key,))
            if rows:
                return Contact.from_row(rows[0])
        return None

    def generation(self) -> int:
        rows = self.store.query("SELECT value FROM contact_meta WHERE name = 'generation'")
        return int(rows[0][0]) if rows else 0

    # -- changing (each: one transaction, one audit row, one generation bump) ---------------

    def add(self, c: Contact, actor: str) -> Contact:
        with self.store.transaction() as conn:
            return self._insert(conn, checked(c), actor)

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
                after = checked(after)
            cols = [k for k in _AUDITED if getattr(before, k) != getattr(after, k)]
            values = [_db(getattr(after, k)) for k in cols]
            if cols:
                conn.execute(
                    f"UPDATE contacts SET {', '.join(c + ' = ?' for c in cols)} "  # noqa: S608
                    "WHERE id = ?",
                    (*values, contact_id),
                )
                self._audit(conn, actor, action, before, after)
        return after

    def record_mx(self, contact_id: int, hosts: tuple[str, ...], at: str) -> None:
        """What the sweep saw (operational data: not audited, no reload needed)."""
        self.store.execute(
            "UPDATE contacts SET mx_seen = ?, mx_checked_at = ? WHERE id = ?",
            (json.dumps(list(hosts)), at, contact_id),
        )

    def take_hint(self, login: str, limit: int) -> bool:
        """Count one lookalike hint for ``login`` today; False once ``limit`` is used."""
        day = self.today().isoformat()
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
        """Add every entry or none, in one transaction (a CSV import).

        Each entry has a label (``line 3``) and is either a contact to check and add or the
        error found while reading it; :class:`BatchError` lists every problem, labelled.
        """
        problems: list[str] = []
        added: list[Contact] = []
        with self.store.transaction() as conn:
            for label, entry in entries:
                if isinstance(entry, ContactError):
                    problems.append(f"{label}: {entry}")
                    continue
                try:
                    added.append(self._insert(conn, checked(entry), actor, action))
                except ContactError as exc:
                    problems.append(f"{label}: {exc}")
            if problems:
                raise BatchError(problems)  # rolls the transaction back
        return added

    # -- audit -------------------------------------------------------------------------

    def history(self, contact_id: int | None = None) -> list[sqlite3.Row]:
        if contact_id is None:
            return self.store.query("SELECT * FROM contact_audit ORDER BY id")
        return self.store.query(
            "SELECT * FROM contact_audit WHERE contact_id = ? ORDER BY id", (contact_id,)
        )

    # -- internals ---------------------------------------------------------------------

    def _insert(
        self, conn: sqlite3.Connection, c: Contact, actor: str, action: str = "add"
    ) -> Contact:
        row = {f.name: _db(getattr(c, f.name)) for f in fields(Contact) if f.name != "id"}
        row["key"] = Contact.key_for(c.kind, c.address, c.unusual)
        dup = conn.execute("SELECT id FROM contacts WHERE key = ?", (row["key"],)).fetchone()
        if dup:
            raise ContactError(f"{c.address} is already approved as C-{dup[0]:03d}")
        cur = conn.execute(
            f"INSERT INTO contacts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608
            list(row.values()),
        )
        added = replace(c, id=int(cur.lastrowid or 0))
        self._audit(conn, actor, action, None, added)
        return added

    def _locked_get(self, conn: sqlite3.Connection, contact_id: int) -> Contact:
        row = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        if row is None:
            raise ContactError(f"no contact C-{contact_id:03d}")
        return Contact.from_row(row)

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
        conn.execute(
            "INSERT INTO contact_audit (at, actor, os_user, action, contact_id, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.clock().isoformat(timespec="seconds"),
                actor,
                os_user(),
                action,
                target.id,
                json.dumps(before.audit_view()) if before else None,
                json.dumps(after.audit_view()) if after else None,
            ),
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


def _db(value: Any) -> Any:
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, bool):
        return int(value)
    return value


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
