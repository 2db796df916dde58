"""Where each key's ciphertext lies: the sealed columns of the spool key and of the
register master key, counted by key id and re-sealed in short batches. The holds, the
contacts and the console's sessions and second factors declare their columns beside
their tables, as ``SEALED`` (a list of :class:`gateway.crypto.SealedColumn`); this module
collects them and lists the queue's and the register index's itself.

Each column is opened and sealed again with the associated data its owner binds it with
(the same row, so a re-sealed blob still opens only in its place); a column that has a
keyed lookup hash next to it gets that hash renewed in the same statement, from the
opened value, so the row is still found once the old key is retired. The register's own
entries are re-sealed by :mod:`gateway.register.rekey` (their digests are in the chain).
:class:`Keys` puts them together with the key files: what each key id still has to open.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from gateway.cli.common import existing_database
from gateway.crypto import Keyring, SealedColumn, key_id_of
from gateway.directory import contacts
from gateway.errors import SpoolCorrupt
from gateway.holds import table as holds
from gateway.queue.release import _aad as release_aad
from gateway.register import checkpoint, index, rekey
from gateway.register.codec import MacKey
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.settings.register import register_settings
from gateway.store import Store
from gateway.web import sessions, totp

SPOOL = [
    # gateway.queue.sealed: the message, the sender's login, the last delivery error
    SealedColumn("queue", "blob", lambda r: str(r["id"]).encode()),
    SealedColumn("queue", "staff", lambda r: b"staff:" + str(r["id"]).encode()),
    SealedColumn("queue", "last_error", lambda r: b"note:" + str(r["id"]).encode()),
    SealedColumn("queue_release", "proof", lambda r: release_aad(r["queue_id"])),
    *holds.SEALED,
    *sessions.SEALED,
    *totp.SEALED,
]
REGISTER = [
    *contacts.SEALED,
    # The index's organisations, domains and addresses (keys reseal rebuilds the index
    # first, so this finds nothing left to do; counted for keys list and retire).
    SealedColumn(
        "register_term",
        "sealed",
        lambda r: index.term_aad(r["what"]),
        ("lookup", lambda k, plain, r: index.term_lookups(k, r["what"], plain.decode())[0]),
    ),
]
BATCH = 200
# Unused enrolment links, which need the key they were issued under until used or expired.
LINKS = "totp enrolment links"
SEALING = ("spool", "register")


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


@dataclass(frozen=True)
class Row:
    which: str  # spool, register, mac
    key_id: str
    state: str  # current, old, missing (found in the database, held by no key file)
    needs: Counter[str]


class Keys:
    """The key files and the database of one config."""

    def __init__(self, settings: Settings) -> None:
        database = existing_database(settings)
        self.settings = settings
        self.rs = register_settings(settings)
        self.store = Store(database)
        self.register = Register.from_settings(self.store, self.rs)
        self.spool = Keyring.load(settings.storage.spool_key_file)

    def keyring(self, which: str) -> Keyring:
        return self.spool if which == "spool" else self.register.keyring

    def needs(self, which: str) -> dict[str, Counter[str]]:
        if which == "spool":
            found = counts(self.store, SPOOL)
            for kid, links in totp.link_key_ids(self.store, time.time()).items():
                found.setdefault(kid, Counter())[LINKS] += links
            return found
        found = counts(self.store, REGISTER)
        for kid, n in rekey.key_counts(self.register).items():
            found.setdefault(kid, Counter()).update(n)
        return found

    def mac_needs(self, mac: MacKey) -> list[tuple[int, int | None, Counter[str]]]:
        """(first epoch, last epoch or None, needs) for each MAC key line."""
        cps, _, _ = checkpoint.load(self.rs.checkpoint_dir, mac)
        out = []
        upper: int | None = None
        for start, _key in mac.lines():
            last = None if upper is None else upper - 1
            sql = "SELECT count(*) AS n FROM register WHERE epoch >= ?"
            params: list[int] = [start]
            if last is not None:
                sql += " AND epoch <= ?"
                params.append(last)
            needs: Counter[str] = Counter()
            needs["register entries"] = self.store.query(sql, params)[0]["n"]
            needs["checkpoints"] = sum(
                1 for c in cps if c.epoch >= start and (last is None or c.epoch <= last)
            )
            out.append((start, last, +needs))
            upper = start
        return out

    def rows(self) -> list[Row]:
        out = []
        for which in SEALING:
            ring = self.keyring(which)
            needs = self.needs(which)
            for i, kid in enumerate(ring.ids):
                out.append(
                    Row(which, kid, "current" if i == 0 else "old", needs.pop(kid, Counter()))
                )
            out += [Row(which, kid, "missing", n) for kid, n in sorted(needs.items())]
        mac = MacKey.load(self.rs.mac_key_file)
        for i, (start, last, uses) in enumerate(self.mac_needs(mac)):
            span = Counter({f"epochs {start}-{'' if last is None else last}": 0})
            span.update(uses)
            out.append(Row("mac", f"mac-e{start}", "current" if i == 0 else "old", span))
        return out

    def audit(self, actor: str, action: str, details: dict[str, object]) -> None:
        with self.store.transaction() as conn:
            self.register.record_admin(conn, actor, action, dict(details))

    def close(self) -> None:
        self.store.close()
