"""Where each key's ciphertext lies: the sealed columns of the spool key and of the
register master key, counted by key id and re-sealed in short batches.

Each column is opened and sealed again with the associated data its owner binds it with
(the same row, so a re-sealed blob still opens only in its place); a column that has a
keyed lookup hash next to it gets that hash renewed in the same statement, from the
opened value, so the row is still found once the old key is retired. The register's own
entries are re-sealed by :mod:`gateway.register.rekey` (their digests are in the chain).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gateway.crypto import Keyring, key_id_of
from gateway.directory.contacts import Contact
from gateway.directory.contacts_sealed import _change_aad, _contact_aad, lookups
from gateway.errors import SpoolCorrupt
from gateway.holds.table import _LOOKUP as HOLD_LOOKUP
from gateway.holds.table import _reasons_aad, _staff_aad
from gateway.queue.release import _aad as release_aad
from gateway.store import Store
from gateway.web.sessions import SessionStore
from gateway.web.totp import TotpStore

Aad = Callable[[sqlite3.Row], bytes]
# (the lookup column, its value computed from the opened plaintext and the row)
Lookup = tuple[str, Callable[[Keyring, bytes, sqlite3.Row], bytes]]


@dataclass(frozen=True)
class SealedColumn:
    table: str
    column: str
    aad: Aad
    lookup: Lookup | None = None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def _contact_lookup(keyring: Keyring, plain: bytes, row: sqlite3.Row) -> bytes:
    contact = Contact.from_fields(row["id"], json.loads(plain))
    return lookups(keyring, contact.key)[0]


SPOOL = [
    # gateway.queue.sealed: the message, the sender's login, the last delivery error
    SealedColumn("queue", "blob", lambda r: str(r["id"]).encode()),
    SealedColumn("queue", "staff", lambda r: b"staff:" + str(r["id"]).encode()),
    SealedColumn("queue", "last_error", lambda r: b"note:" + str(r["id"]).encode()),
    SealedColumn("queue_release", "proof", lambda r: release_aad(r["queue_id"])),
    SealedColumn(
        "holds",
        "staff",
        lambda r: _staff_aad(r["queue_id"]),
        ("staff_key", lambda k, plain, _r: k.lookups(plain.decode(), HOLD_LOOKUP)[0]),
    ),
    SealedColumn("holds", "reasons", lambda r: _reasons_aad(r["queue_id"])),
    SealedColumn("web_sessions", "state", lambda r: SessionStore._aad(r["key"])),
    SealedColumn("web_totp", "secret", lambda r: TotpStore._aad(r["login"])),
]
REGISTER = [
    SealedColumn(
        "contacts", "sealed", lambda r: _contact_aad(r["id"]), ("lookup", _contact_lookup)
    ),
    SealedColumn("contact_audit", "sealed", lambda r: _change_aad(r["id"])),
]
BATCH = 200


def _exists(store: Store, table: str) -> bool:
    return bool(
        store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    )


def counts(store: Store, columns: list[SealedColumn]) -> dict[str, Counter[str]]:
    """For each key id, how many values of each column it sealed (nothing is opened)."""
    found: dict[str, Counter[str]] = {}
    for col in columns:
        if not _exists(store, col.table):
            continue
        rows = store.query(
            f"SELECT substr({col.column}, 1, 300) AS head FROM {col.table}"  # noqa: S608
            f" WHERE typeof({col.column}) = 'blob'"
        )
        for r in rows:
            kid = key_id_of(bytes(r["head"]))
            if kid is not None:
                found.setdefault(kid, Counter())[col.name] += 1
    return found


def reseal(
    store: Store, keyring: Keyring, col: SealedColumn, batch: int = BATCH
) -> tuple[int, int]:
    """Seal every value of ``col`` not under the current key again, ``batch`` rows per
    transaction; returns (re-sealed, unreadable)."""
    if not _exists(store, col.table):
        return 0, 0
    done = unreadable = 0
    after = -(2**63)
    while True:
        with store.transaction() as conn:
            rows = conn.execute(
                f"SELECT rowid AS rowid_, * FROM {col.table} WHERE rowid > ?"  # noqa: S608
                " ORDER BY rowid LIMIT ?",
                (after, batch),
            ).fetchall()
            if not rows:
                return done, unreadable
            after = rows[-1]["rowid_"]
            current = keyring.current_id
            for r in rows:
                blob = r[col.column]
                if not isinstance(blob, bytes) or key_id_of(blob) in (None, current):
                    continue
                aad = col.aad(r)
                try:
                    plain = keyring.open(blob, aad)
                except SpoolCorrupt:
                    unreadable += 1
                    continue
                sets, values = [f"{col.column} = ?"], [keyring.seal(plain, aad)]
                if col.lookup is not None:
                    sets.append(f"{col.lookup[0]} = ?")
                    values.append(col.lookup[1](keyring, plain, r))
                conn.execute(
                    f"UPDATE {col.table} SET {', '.join(sets)} WHERE rowid = ?",  # noqa: S608
                    (*values, r["rowid_"]),
                )
                done += 1
