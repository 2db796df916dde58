"""The holds table: one row per held message, what is sealed in it, and how it is searched.

The staff login is sealed with the spool key, bound to the queue ID (PRIV-1): next to a
held message's times it says who sent something a line manager must look at. A member's
held messages are found by a keyed hash of their login (HMAC-SHA-256,
:meth:`gateway.crypto.Keyring.lookups`), never by the login itself. The reasons are
sealed too: a consent status says something about a family.

Database step 3 (PRIV-1, :data:`gateway.schema.STEPS`, run by ``c4f-gateway upgrade``)
brings an older database up to this table: ``holds.staff`` held the login in the clear
and there was no ``staff_key``; the column is added, each login sealed and hashed in
place, and the write-ahead log emptied so that, with ``secure_delete``, no clear copy
stays behind.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.crypto import Keyring, SealedColumn
from gateway.errors import SpoolCorrupt
from gateway.store import Store

TABLE = """
CREATE TABLE IF NOT EXISTS holds (
    queue_id TEXT PRIMARY KEY REFERENCES queue(id) ON DELETE CASCADE,
    staff BLOB NOT NULL,  -- sealed (step 3): the sender's login
    held_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    reminded_at REAL NOT NULL,
    needs_note INTEGER NOT NULL,
    reasons BLOB NOT NULL,  -- sealed: a consent status says something about a family
    staff_key BLOB NOT NULL  -- the login's keyed hash (step 3): a sender's holds are found by it
);
CREATE INDEX IF NOT EXISTS holds_expiry ON holds (expires_at);
"""
# After step 3, which adds the column to an older table.
INDEXES = "CREATE INDEX IF NOT EXISTS holds_staff ON holds (staff_key);"
_LOOKUP = b"holds.staff"
_COLUMNS = "queue_id, staff, held_at, expires_at, needs_note, reasons"
UNREADABLE_REASONS = ("(unreadable: fails its integrity check)",)


@dataclass(frozen=True)
class HoldRow:
    queue_id: str
    staff: str  # the sender's login, unsealed
    held_at: float
    expires_at: float
    needs_note: bool
    reasons: tuple[str, ...]  # () when not asked for (nothing decrypted but the login)


class HoldsTable:
    def __init__(self, store: Store, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring
        store.ensure(TABLE)
        store.ensure(INDEXES)

    def insert(
        self,
        conn: sqlite3.Connection,
        *,
        queue_id: str,
        staff: str,
        held_at: float,
        expires_at: float,
        needs_note: bool,
        reasons: Sequence[str],
    ) -> None:
        login = staff.lower()
        conn.execute(
            "INSERT INTO holds (queue_id, staff, staff_key, held_at, expires_at, reminded_at,"
            " needs_note, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                queue_id,
                self.keyring.seal(login.encode(), _staff_aad(queue_id)),
                self.keyring.lookups(login, _LOOKUP)[0],
                held_at,
                expires_at,
                held_at,
                int(needs_note),
                self.keyring.seal(json.dumps(list(reasons)).encode(), _reasons_aad(queue_id)),
            ),
        )

    # -- reading -----------------------------------------------------------------------

    def one(self, queue_id: str, conn: sqlite3.Connection | None = None) -> HoldRow | None:
        """One held message, read inside ``conn``'s transaction when given."""
        sql = f"SELECT {_COLUMNS} FROM holds WHERE queue_id = ?"  # noqa: S608
        rows = (
            conn.execute(sql, (queue_id,)).fetchall()
            if conn
            else self.store.query(sql, (queue_id,))
        )
        return self._decode(rows[0], reasons=True) if rows else None

    def sent_by(self, logins: Collection[str] | None, *, reasons: bool = True) -> list[HoldRow]:
        """Held messages of these senders (None: everyone's), oldest first."""
        where, params = self._senders(logins)
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM holds {where} ORDER BY held_at",  # noqa: S608
            params,
        )
        return [self._decode(r, reasons=reasons) for r in rows]

    def count_sent_by(self, logins: Collection[str] | None) -> int:
        """How many :meth:`sent_by` would return, with nothing decrypted."""
        where, params = self._senders(logins)
        return int(self.store.query(f"SELECT count(*) FROM holds {where}", params)[0][0])  # noqa: S608

    def not_reminded_since(self, conn: sqlite3.Connection, since: float) -> list[HoldRow]:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM holds WHERE reminded_at <= ? ORDER BY held_at",  # noqa: S608
            (since,),
        ).fetchall()
        return [self._decode(r, reasons=True) for r in rows]

    def expired(self, now: float) -> list[str]:
        rows = self.store.query("SELECT queue_id FROM holds WHERE expires_at <= ?", (now,))
        return [str(r["queue_id"]) for r in rows]

    # -- changing ----------------------------------------------------------------------

    def remove(self, conn: sqlite3.Connection, queue_id: str) -> None:
        conn.execute("DELETE FROM holds WHERE queue_id = ?", (queue_id,))

    def reminded(self, conn: sqlite3.Connection, queue_ids: Sequence[str], at: float) -> None:
        conn.executemany(
            "UPDATE holds SET reminded_at = ? WHERE queue_id = ?", [(at, q) for q in queue_ids]
        )

    # -- internals ---------------------------------------------------------------------

    def _senders(self, logins: Collection[str] | None) -> tuple[str, list[Any]]:
        if logins is None:
            return "", []
        keys = [k for login in logins for k in self.keyring.lookups(login.lower(), _LOOKUP)]
        return f"WHERE staff_key IN ({', '.join('?' * len(keys)) or 'NULL'})", keys

    def _decode(self, row: sqlite3.Row, *, reasons: bool) -> HoldRow:
        qid = str(row["queue_id"])
        return HoldRow(
            queue_id=qid,
            staff=self._open(row["staff"], _staff_aad(qid)) or "(unreadable)",
            held_at=row["held_at"],
            expires_at=row["expires_at"],
            needs_note=bool(row["needs_note"]),
            reasons=self._reasons(qid, row["reasons"]) if reasons else (),
        )

    def _reasons(self, queue_id: str, blob: bytes) -> tuple[str, ...]:
        text = self._open(blob, _reasons_aad(queue_id))
        try:
            return tuple(str(r) for r in json.loads(text)) if text else UNREADABLE_REASONS
        except (ValueError, TypeError):
            return UNREADABLE_REASONS

    def _open(self, blob: bytes, aad: bytes) -> str:
        try:
            return self.keyring.open(blob, aad).decode()
        except (SpoolCorrupt, UnicodeDecodeError):
            return ""


def _staff_aad(queue_id: str) -> bytes:
    return b"hold-staff:" + queue_id.encode()


def _reasons_aad(queue_id: str) -> bytes:
    return b"hold:" + queue_id.encode()  # as sealed since holds began: existing rows open


# What ``keys reseal spool`` seals again: the login (and its hash), the reasons.
SEALED = [
    SealedColumn(
        "holds",
        "staff",
        lambda r: _staff_aad(r["queue_id"]),
        ("staff_key", lambda k, plain, _r: k.lookups(plain.decode(), _LOOKUP)[0]),
    ),
    SealedColumn("holds", "reasons", lambda r: _reasons_aad(r["queue_id"])),
]


def step_3_seal_staff(store: Store, keyring: Keyring) -> int:
    """Seal and hash every login still in the clear; returns how many rows changed."""
    columns = {r["name"] for r in store.query("PRAGMA table_info(holds)")}
    if not columns:
        return 0  # no holds table yet: HoldsTable creates it as it is now
    if "staff_key" not in columns:
        store.execute("ALTER TABLE holds ADD COLUMN staff_key BLOB")
    clear = store.query(
        "SELECT queue_id, staff FROM holds WHERE typeof(staff) = 'text' OR staff_key IS NULL"
    )
    if clear:
        with store.transaction() as conn:
            for r in clear:
                login = str(r["staff"]).lower()
                conn.execute(
                    "UPDATE holds SET staff = ?, staff_key = ? WHERE queue_id = ?",
                    (
                        keyring.seal(login.encode(), _staff_aad(r["queue_id"])),
                        keyring.lookups(login, _LOOKUP)[0],
                        r["queue_id"],
                    ),
                )
        store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    store.ensure(INDEXES)
    return len(clear)
