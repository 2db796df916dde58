"""How contacts and their change history lie in the database: sealed, found by keyed hash.

Policy, "Storage of information": personal information is kept in a secure place. A
contact names a person, their organisation and role, how their address was checked and
notes about them, and each change row repeats them; a copy of the database file must not
read as a list of the people the centre writes to (PRIV-1). So each contact is one
AES-256-GCM blob bound to its id, each change row one blob bound to its own id (a blob
copied into another row does not open), and the only plain columns are ids, the change's
time and action (what retention needs) and a keyed hash (HMAC) of the lookup key, the one
column searched (``contacts show ADDRESS``, duplicate checks, the console's import).

The key is the register's master key (``[register] key_file``), not the spool's: the
contact list is an admin record kept by the same people and commands as the register
(``c4f-gateway contacts`` already opens the register to write its admin trail and needs
no spool key), its changes are mirrored into the register's admin trail under that key,
and a removed contact's history is purged with the register's retention.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import structlog

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt
from gateway.settings.register import register_settings
from gateway.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lookup BLOB NOT NULL UNIQUE,     -- HMAC of the lookup key (Contact.key_for)
    sealed BLOB NOT NULL             -- every field, sealed and bound to the id
);
CREATE TABLE IF NOT EXISTS contact_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, action TEXT NOT NULL, contact_id INTEGER NOT NULL,
    sealed BLOB NOT NULL             -- actor, os user, before and after, bound to the id
);
CREATE INDEX IF NOT EXISTS contact_audit_contact ON contact_audit (contact_id);
CREATE TABLE IF NOT EXISTS contact_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contact_hints (
    login TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (login, day)
);
"""
log = structlog.get_logger("gateway.directory")
_LOOKUP = b"contact"
_HINT = b"contact-hint-login"


class ContactsUnreadable(ValueError):
    """A sealed contact or change row does not open: altered, or another key."""


def keyring_for(settings: Any) -> Keyring:
    """The key contacts are sealed with: the register's master key file."""
    return Keyring.load(register_settings(settings).key_file)


def ensure_schema(store: Store, keyring: Keyring) -> None:
    """Create the tables (an older database is brought up to them by ``upgrade``)."""
    store.ensure(SCHEMA)


def _plain(store: Store, table: str, column: str) -> bool:
    return column in {r["name"] for r in store.query(f"PRAGMA table_info({table})")}


def step_4_seal_plaintext(store: Store, keyring: Keyring) -> tuple[int, int]:
    """Database step 4 (PRIV-1, :data:`gateway.schema.STEPS`): earlier releases kept
    contacts and their change rows in clear. Seal every row in place under the same id,
    in one transaction (a crash leaves the old tables as they were), then drop the clear
    tables with ``secure_delete`` on and empty the write-ahead log, so no clear copy stays
    in either file. The day's lookalike hint counts (kept by login in clear) start again.
    Returns (contacts, change rows)."""
    if not (_plain(store, "contacts", "address") or _plain(store, "contact_audit", "actor")):
        return 0, 0
    store.query("PRAGMA secure_delete = ON")
    with store.transaction() as conn:
        contacts = _seal_contacts(conn, keyring) if _has(conn, "contacts", "address") else 0
        changes = _seal_changes(conn, keyring) if _has(conn, "contact_audit", "actor") else 0
        conn.execute("DELETE FROM contact_hints")
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    log.warning("contacts_sealed_in_place", contacts=contacts, changes=changes)
    return contacts, changes


def _has(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(r[1] == column for r in conn.execute(f"PRAGMA table_info({table})"))


def _create(conn: sqlite3.Connection) -> None:
    """The tables of :data:`SCHEMA`, inside the caller's transaction (``executescript``
    would commit it)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _seal_contacts(conn: sqlite3.Connection, keyring: Keyring) -> int:
    conn.execute("ALTER TABLE contacts RENAME TO contacts_clear")
    _create(conn)
    rows = conn.execute("SELECT * FROM contacts_clear ORDER BY id").fetchall()
    for row in rows:
        values = {k: row[k] for k in row.keys() if k not in ("id", "key")}  # noqa: SIM118
        for flag in ("unusual", "requires_approval"):
            if flag in values:
                values[flag] = bool(values[flag])
        for name in ("mx_hosts", "mx_seen"):
            if values.get(name) is not None:
                values[name] = json.loads(values[name])
        conn.execute(
            "INSERT INTO contacts (id, lookup, sealed) VALUES (?, ?, ?)",
            (row["id"], lookups(keyring, row["key"])[0], seal_contact(keyring, row["id"], values)),
        )
    conn.execute("DROP TABLE contacts_clear")
    return len(rows)


def _seal_changes(conn: sqlite3.Connection, keyring: Keyring) -> int:
    conn.execute("DROP INDEX IF EXISTS contact_audit_contact")
    conn.execute("ALTER TABLE contact_audit RENAME TO contact_audit_clear")
    _create(conn)
    rows = conn.execute("SELECT * FROM contact_audit_clear ORDER BY id").fetchall()
    for row in rows:
        personal = {
            "actor": row["actor"],
            "os_user": row["os_user"],
            "before": None if row["before"] is None else json.loads(row["before"]),
            "after": None if row["after"] is None else json.loads(row["after"]),
        }
        blob = keyring.seal(json.dumps(personal).encode(), change_aad(row["id"]))
        conn.execute(
            "INSERT INTO contact_audit (id, at, action, contact_id, sealed) VALUES (?,?,?,?,?)",
            (row["id"], row["at"], row["action"], row["contact_id"], blob),
        )
    conn.execute("DROP TABLE contact_audit_clear")
    return len(rows)


def lookups(keyring: Keyring, key: str) -> list[bytes]:
    """The keyed hashes ``key`` may be stored under (the current key's first)."""
    return keyring.lookups(key, _LOOKUP)


def hint_login(keyring: Keyring, login: str) -> str:
    """The lookalike-hint allowance is counted per staff login: kept under a keyed hash."""
    return keyring.lookups(login.lower(), _HINT)[0].hex()


def contact_aad(contact_id: int) -> bytes:
    """What a contact's blob is bound to: its id."""
    return b"c4f-contact:" + str(contact_id).encode()


def change_aad(row_id: int) -> bytes:
    """What a change row's blob is bound to: the row's own id."""
    return b"c4f-contact-change:" + str(row_id).encode()


def seal_contact(keyring: Keyring, contact_id: int, values: dict[str, Any]) -> bytes:
    """A contact's fields (all but the id), sealed and bound to ``contact_id``."""
    return keyring.seal(json.dumps(values).encode(), contact_aad(contact_id))


def open_contact(keyring: Keyring, contact_id: int, blob: bytes) -> dict[str, Any]:
    """The fields :func:`seal_contact` sealed; :class:`ContactsUnreadable` if they fail
    their check (fail closed: the filters answer 4xx rather than guess)."""
    try:
        values = json.loads(keyring.open(bytes(blob), contact_aad(contact_id)))
        if not isinstance(values, dict):
            raise ValueError("not an object")
    except (SpoolCorrupt, ValueError) as exc:
        raise ContactsUnreadable(
            f"contact C-{contact_id:03d} cannot be read: {exc} (check [register] key_file)"
        ) from None
    return values


def insert_change(
    conn: sqlite3.Connection,
    keyring: Keyring,
    at: str,
    action: str,
    contact_id: int,
    personal: dict[str, Any],
) -> None:
    """One change row; the id it gets is what its blob is bound to."""
    cur = conn.execute(
        "INSERT INTO contact_audit (at, action, contact_id, sealed) VALUES (?, ?, ?, X'')",
        (at, action, contact_id),
    )
    row_id = int(cur.lastrowid or 0)
    blob = keyring.seal(json.dumps(personal).encode(), change_aad(row_id))
    conn.execute("UPDATE contact_audit SET sealed = ? WHERE id = ?", (blob, row_id))


def open_change(keyring: Keyring, row: sqlite3.Row) -> dict[str, Any]:
    """A change row as the earlier plain rows read: at, actor, os_user, action,
    contact_id, and before/after as JSON text (or None)."""
    try:
        personal = json.loads(keyring.open(bytes(row["sealed"]), change_aad(row["id"])))
    except (SpoolCorrupt, ValueError) as exc:
        raise ContactsUnreadable(
            f"change {row['id']} of contact C-{row['contact_id']:03d} cannot be read: {exc}"
        ) from None
    return {
        "id": row["id"],
        "at": row["at"],
        "action": row["action"],
        "contact_id": row["contact_id"],
        "actor": personal["actor"],
        "os_user": personal["os_user"],
        "before": None if personal["before"] is None else json.dumps(personal["before"]),
        "after": None if personal["after"] is None else json.dumps(personal["after"]),
    }
