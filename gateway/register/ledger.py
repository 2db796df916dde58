"""The disclosure register: every transfer recorded, tamper-evident, encrypted, purgeable.

Policy, "Inter-agency working": the centre records who information went to, what it
was, whether consent was obtained, refused or not sought, the reasons when it was not
obtained, and whether the person was later informed. Entries are appended, never
changed: a follow-up (a delivery outcome, "the person was informed", a manager's
concern, a hold) is a new entry pointing at the original.

The register lives in the queue's SQLite file and is written inside the engine's own
transaction (the :class:`gateway.events.Recorder` methods), so a message is never
accepted or marked delivered without its entry; if an append fails, the engine rolls
back and answers 451 (DUR-6). Appends read the previous entry inside the write
transaction, so two appenders still make one linear chain (REG-7).

Plain columns: sequence number, time, kind, queue ID, size, message SHA-256, MACs.
Everything personal (staff, recipients, subject, reasons, family reference, notes) is
sealed per entry (see :mod:`gateway.register.codec`).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from gateway.crypto import Keyring
from gateway.errors import ConfigError
from gateway.events import Accepted, HoldEvent, Outcome, RefusedEvent
from gateway.mail.content import Content
from gateway.register import checkpoint, index, threads
from gateway.register.codec import (
    GENESIS,
    EntryFields,
    MacKey,
    data_digest,
    entry_mac,
    seal_entry,
)
from gateway.register.criteria import Filters
from gateway.register.entry_rows import open_row
from gateway.register.event_entries import (
    accepted_personal,
    hold_personal,
    outcome_personal,
    refused_personal,
)
from gateway.register.fields import (
    PurgeRefused,
    RegisterError,
    canonical_json,
    check_changes,
)
from gateway.register.fold import build_records
from gateway.register.hold_trail import public_step
from gateway.register.message import Summary, summarise
from gateway.register.record import Entry, Record
from gateway.register.verify import COLUMNS, VerifyResult, verify
from gateway.settings.register import RegisterSettings
from gateway.store import Store

__all__ = ["SCHEMA", "AdminAudit", "PurgeRefused", "Register", "RegisterError"]

log = structlog.get_logger("gateway.register")

SCHEMA = """
CREATE TABLE IF NOT EXISTS register (
    seq INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ref INTEGER NOT NULL DEFAULT 0,
    queue_id TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    public TEXT NOT NULL DEFAULT '{}',
    data_sha256 BLOB NOT NULL,
    sealed BLOB,
    entry_key BLOB,
    mac BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS register_queue ON register (queue_id);
CREATE INDEX IF NOT EXISTS register_ref ON register (ref);
"""

# The rows of one record: the entry that starts it and its follow-ups.
_RECORD_ROWS = f"SELECT {COLUMNS} FROM register WHERE seq = ? OR ref = ? ORDER BY seq"  # noqa: S608
# What contacts and staff administration call inside their own transactions.
AdminAudit = Callable[[sqlite3.Connection, str, str, dict[str, Any]], int]


class Register:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        mac_key_file: Path,
        checkpoint_dir: Path,
        *,
        retention_days: int = 1095,
        inform_within_days: int = 14,
        evolve_mac_key: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.mac_key_file = mac_key_file
        self.mac_key = MacKey.load(mac_key_file)
        self._mac_stamp = _stamp(mac_key_file)
        self.checkpoint_dir = checkpoint_dir
        self.retention_days = retention_days
        self.inform_within_days = inform_within_days
        self.evolve_mac_key = evolve_mac_key
        self.clock = clock
        store.ensure(SCHEMA)
        store.ensure(threads.SCHEMA)
        store.ensure(index.SCHEMA)
        # Freed pages are zeroed, so purged keys and ciphertext do not linger in the file.
        store.query("PRAGMA secure_delete = ON")

    @classmethod
    def from_settings(
        cls, store: Store, settings: RegisterSettings, *, clock: Callable[[], float] = time.time
    ) -> Register:
        return cls(
            store,
            Keyring.load(settings.key_file),
            settings.mac_key_file,
            settings.checkpoint_dir,
            retention_days=settings.retention_days,
            inform_within_days=settings.inform_within_days,
            evolve_mac_key=settings.evolve_mac_key,
            clock=clock,
        )

    @staticmethod
    def create_keys(settings: RegisterSettings) -> list[Path]:
        """Create whichever register key files are missing (for `init`); returns them."""
        created = []
        if not settings.key_file.exists():
            Keyring.create(settings.key_file)
            created.append(settings.key_file)
        if not settings.mac_key_file.exists():
            MacKey.create(settings.mac_key_file)
            created.append(settings.mac_key_file)
        return created

    # -- appending ---------------------------------------------------------------------

    def append(
        self,
        conn: sqlite3.Connection,
        *,
        kind: str,
        at: float,
        personal: dict[str, Any],
        ref: int = 0,
        queue_id: str = "",
        size: int = 0,
        sha256: str = "",
        public: dict[str, Any] | None = None,
    ) -> int:
        """Append one entry inside the caller's write transaction; returns its number."""
        last = conn.execute("SELECT seq, mac, epoch FROM register ORDER BY seq DESC LIMIT 1")
        row = last.fetchone()
        seq, prev, last_epoch = (row[0] + 1, bytes(row[1]), row[2]) if row else (1, GENESIS, 0)
        self.refresh_mac_key()
        if last_epoch > self.mac_key.epoch:
            self.mac_key = MacKey.load(self.mac_key_file)  # another process evolved the key
            if last_epoch > self.mac_key.epoch:
                raise RegisterError("the register MAC key is older than the register")
        plain = canonical_json(personal)
        sealed, wrapped = seal_entry(self.keyring, seq, plain.encode())
        fields = EntryFields(
            seq=seq,
            epoch=self.mac_key.epoch,
            at_us=round(at * 1e6),
            kind=kind,
            ref=ref,
            queue_id=queue_id,
            size=size,
            sha256=sha256,
            public=canonical_json(public or {}),
            data_sha256=data_digest(sealed, wrapped),
        )
        mac = entry_mac(self.mac_key.for_epoch(fields.epoch), fields, prev)
        # EntryFields lists the plain columns in table order (register_verify.COLUMNS).
        conn.execute(
            f"INSERT INTO register ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (*dataclasses.astuple(fields), sealed, wrapped, mac),
        )
        if not ref:
            # A new record, whose only entry is this one: indexed from what was just
            # sealed, not read back and opened again.
            entry = Entry(
                seq=seq,
                at=fields.at_us / 1e6,
                kind=kind,
                ref=0,
                queue_id=queue_id,
                size=size,
                sha256=sha256,
                public=json.loads(fields.public),
                data=json.loads(plain),
                purged=False,
            )
            [record] = self._build([entry])
            index.put(conn, self.keyring, record, new=True)
        elif kind not in index.UNINDEXED_FOLLOWUPS:
            self.reindex(conn, [ref if index.is_root(conn, ref) else seq])
        return seq

    def reindex(self, conn: sqlite3.Connection, roots: list[int]) -> None:
        """Rewrite the index rows (:mod:`.index`) of the records ``roots`` start, folded
        from their own entries, inside the caller's transaction."""
        for root in roots:
            rows = conn.execute(_RECORD_ROWS, (root, root)).fetchall()
            found = self._started_by(root, (self._entry(r) for r in rows))
            if found is not None:
                index.put(conn, self.keyring, found)

    def rebuild_index(self) -> int:
        """The whole index again from the register (upgrade, reseal); returns its rows."""
        with self.store.transaction() as conn:
            return _rebuild_index(conn, self.keyring)

    # -- gateway.events.Recorder -------------------------------------------------------

    def summarise(self, content: Content) -> Summary:
        return summarise(content)

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        # Read before the transaction by the spool (Recorder.summarise), else here.
        summary = event.summary if isinstance(event.summary, Summary) else summarise(event.content)
        personal = accepted_personal(event, summary)
        seq = self.append(
            conn,
            kind="accepted",
            at=event.received_at,
            personal=personal,
            queue_id=event.queue_id,
            size=len(event.content),
            sha256=event.sha256,
        )
        if event.staff and summary.message_id:
            threads.remember(conn, self.keyring, summary.message_id, seq, event.received_at)

    def refused(self, conn: sqlite3.Connection, event: RefusedEvent) -> None:
        personal = refused_personal(event)
        self.append(conn, kind="refused", at=event.at, personal=personal, queue_id=event.queue_id)

    def outcome(self, conn: sqlite3.Connection, event: Outcome) -> None:
        personal = outcome_personal(event)
        self.append(
            conn,
            kind="outcome",
            at=event.at,
            personal=personal,
            ref=_accepted_entry(conn, event.queue_id),
            queue_id=event.queue_id,
        )

    def hold(self, conn: sqlite3.Connection, event: HoldEvent) -> None:
        """Held for approval, then approved (who, note), refused, withdrawn or expired.

        The action is also written in the clear (MAC-covered), so that ``register verify``
        can tell a delivery after an approval from one after a hold alone (REG-10)."""
        personal = hold_personal(event)
        self.append(
            conn,
            kind="hold",
            at=event.at,
            personal=personal,
            ref=_accepted_entry(conn, event.queue_id),
            queue_id=event.queue_id,
            public=public_step(event.action),
        )

    def record_admin(
        self, conn: sqlite3.Connection, actor: str, action: str, details: dict[str, Any]
    ) -> int:
        """An admin action (contacts, staff) recorded in the caller's transaction."""
        personal = {"actor": actor, "action": action, "details": details}
        return self.append(conn, kind="admin", at=self.clock(), personal=personal)

    def annotate(self, seq: int, actor: str, **changes: Any) -> int:
        """A follow-up to entry ``seq``: informed, reason, concern, consent, hold, ..."""
        checked = check_changes(changes)
        found = self.store.query("SELECT seq, ref FROM register WHERE seq = ?", (seq,))
        # The record holding entry ``seq``, read alone: only its number and purge matter here.
        target = self.thread_record(found[0]["ref"] or seq) if found else None
        if target is None:
            raise RegisterError(no_entry(seq))
        if target.purged:
            raise RegisterError(f"entry {target.seq} was purged; its details no longer exist")
        with self.store.transaction() as conn:
            new = self.append(
                conn,
                kind="annotation",
                at=self.clock(),
                ref=target.seq,
                personal={"actor": actor, "changes": checked},
            )
        log.info("register_annotated", entry=target.seq, followup=new, fields=sorted(checked))
        return new

    # -- reading -----------------------------------------------------------------------

    def entries(self, progress: Callable[[int, int], None] | None = None) -> list[Entry]:
        """Every entry, decrypted (purged ones with empty data), in register order;
        ``progress(entries read, entries)`` as they are decrypted, last with both equal."""
        rows = self.store.query(f"SELECT {COLUMNS} FROM register ORDER BY seq")  # noqa: S608
        if progress is None:
            return [self._entry(r) for r in rows]
        out = []
        for done, row in enumerate(rows, 1):
            out.append(self._entry(row))
            if done % 500 == 0:
                progress(done, len(rows))
        progress(len(rows), len(rows))
        return out

    def _entry(self, row: Any) -> Entry:
        return open_row(self.keyring, row)

    def records(self, filters: Filters | None = None) -> list[Record]:
        every = self._build(self.entries())
        if filters is None:
            return every
        if filters.now is None:  # overdue and review dates are judged by this clock
            filters = dataclasses.replace(filters, now=self.clock())
        return [r for r in every if filters.match(r)]

    def _build(self, entries: Iterable[Entry]) -> list[Record]:
        return build_records(entries, inform_within_days=self.inform_within_days)

    def thread_record(self, seq: int) -> Record | None:
        """The record that entry ``seq`` starts (with its follow-ups), reading only those
        entries: for the disclosure filter, once per reply in a conversation."""
        rows = self.store.query(_RECORD_ROWS, (seq, seq))
        return self._started_by(seq, (self._entry(r) for r in rows))

    def _started_by(self, seq: int, entries: Iterable[Entry]) -> Record | None:
        """The record entry ``seq`` starts, folded from ``entries`` (it and its follow-ups)."""
        found = self._build(entries)
        return found[0] if found and found[0].seq == seq else None

    def record(self, seq: int) -> Record | None:
        for r in self._build(self.entries()):
            if r.seq == seq or any(f.seq == seq for f in r.followups):
                return r
        return None

    # -- integrity ---------------------------------------------------------------------

    def refresh_mac_key(self) -> None:
        """Read the MAC key file again if another process replaced it (``keys rotate
        mac``, or a daily evolution), so this process signs and verifies with it."""
        stamp = _stamp(self.mac_key_file)
        if stamp is None or stamp == self._mac_stamp:
            return
        self._mac_stamp = stamp
        try:
            found = MacKey.load(self.mac_key_file)
        except ConfigError as exc:
            log.error("register_mac_key_reload_failed", error=str(exc))
            return
        if found.epoch >= self.mac_key.epoch:
            self.mac_key = found
            log.info("register_mac_key_reloaded", epoch=found.epoch)

    def verify(
        self,
        mac_key: MacKey | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyResult:
        """``register verify``; ``progress(entries checked, entries)`` as it goes."""
        self.refresh_mac_key()
        return verify(
            self.store, mac_key or self.mac_key, self.checkpoint_dir, self.clock(), progress
        )

    def checkpoint(self) -> Path:
        """Write today's signed head file (REG-4); refuses if the head went backwards."""
        self.refresh_mac_key()
        row = self.store.query("SELECT seq, mac FROM register ORDER BY seq DESC LIMIT 1")
        count, head = (row[0]["seq"], bytes(row[0]["mac"])) if row else (0, b"")
        found, _, _ = checkpoint.load(self.checkpoint_dir, self.mac_key)
        for cp in found:
            at = self.store.query("SELECT mac FROM register WHERE seq = ?", (cp.count,))
            if cp.count > count or (cp.count and (not at or bytes(at[0]["mac"]) != cp.head)):
                log.error("register_checkpoint_mismatch", checkpoint=cp.name, count=count)
                raise RegisterError(
                    f"the register no longer matches checkpoint {cp.name}; run "
                    "`register verify` (no new checkpoint was written)"
                )
        current = MacKey.load(self.mac_key_file)
        if current.epoch > self.mac_key.epoch:
            self.mac_key = current  # another process evolved it
        now = self.clock()
        first_today = not checkpoint.written_on(self.checkpoint_dir, now)
        path = checkpoint.write(self.checkpoint_dir, count, head, self.mac_key, now)
        if self.evolve_mac_key and first_today:
            # Forward integrity, once a day: this checkpoint, signed with the outgoing key,
            # fixes which entries that key wrote; the key is then gone from this machine.
            evolved = self.mac_key.evolved()
            evolved.save(self.mac_key_file)  # first: if it fails, keep signing as before
            self.mac_key = evolved
        log.info("register_checkpoint", count=count, epoch=self.mac_key.epoch, file=path.name)
        return path


def step_5_index_register(store: Store, keyring: Keyring) -> int:
    """Schema step 5: the register's index (:mod:`.index`), built from every entry."""
    if not store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'register'"):
        return 0
    store.ensure(index.SCHEMA)
    with store.transaction() as conn:
        return _rebuild_index(conn, keyring)


def _rebuild_index(conn: sqlite3.Connection, keyring: Keyring) -> int:
    """The index built again from every entry, inside the caller's transaction."""
    rows = conn.execute(f"SELECT {COLUMNS} FROM register ORDER BY seq").fetchall()  # noqa: S608
    return index.rebuild(conn, keyring, build_records(open_row(keyring, r) for r in rows))


def no_entry(seq: int) -> str:
    """The words for an entry that does not exist (the console: or that its viewer may
    not read, which reads the same)."""
    return f"there is no register entry {seq}"


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _accepted_entry(conn: sqlite3.Connection, queue_id: str) -> int:
    found = conn.execute(
        "SELECT seq FROM register WHERE queue_id = ? AND kind = 'accepted' LIMIT 1", (queue_id,)
    ).fetchone()
    return int(found[0]) if found else 0
