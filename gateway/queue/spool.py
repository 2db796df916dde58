"""The durable, encrypted queue.

A message is accepted by ONE SQLite transaction (``synchronous=FULL``, so it is on disk
when COMMIT returns) that writes the sealed message, one row per recipient and the
register's record. Only after that commit does the client get its 250; a crash at any
earlier point leaves no trace, a crash after it loses nothing (RFC 5321 6.1).

Why SQLite rather than one file per message: the acceptance is then a single atomic
step that includes the register entry, so there is no window where a message is on
disk without its record or the other way round, no orphan temp files and no directory
fsync to get right. The sealed blob is AES-256-GCM bound to its queue ID, so nothing
of the body, subject or recipients is readable on disk, and a damaged or altered blob
fails its tag: the message is then quarantined (state ``corrupt``), shown by
``queue list``, never sent and never silently dropped (DUR-4).

Queue states (the only moves allowed are in ``_MOVES``)::

    queued  --delivered to every recipient-->  (row removed; the register keeps the record)
    queued  --some recipient bounced-------->  (row removed; the DSN queued in the same step)
    queued  --integrity check failed-------->  corrupt
    corrupt --admin retries, check passes--->  queued   (e.g. a lost key file was restored)
    corrupt --admin deletes----------------->  (row removed)
    held    --a line manager approves------->  queued   (see gateway.holds.service)
    held    --refused, withdrawn, expired--->  (row removed and shredded)

A ``held`` message is never picked up by the delivery worker: only an approval moves it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt, TempFailure
from gateway.events import Accepted, NullRecorder, Outcome, Recorder
from gateway.store import Store

log = structlog.get_logger("gateway.spool")

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    staff TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error BLOB,
    blob BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (state, next_attempt);
CREATE TABLE IF NOT EXISTS queue_rcpt (
    queue_id TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (queue_id, idx)
);
"""

_MOVES = {("queued", "corrupt"), ("corrupt", "queued"), ("held", "queued")}


def new_queue_id() -> str:
    """12 characters, unguessable, safe in logs and headers."""
    return secrets.token_hex(6).upper()


@dataclass(frozen=True)
class Spooled:
    queue_id: str
    created: float
    staff: str
    peer: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    annotations: dict[str, Any]
    attempts: int
    pending: tuple[int, ...]  # indexes into rcpt_tos still to deliver


@dataclass(frozen=True)
class QueueRow:
    queue_id: str
    created: float
    staff: str
    size: int
    state: str
    attempts: int
    next_attempt: float
    last_error: str
    pending: int


class Spool:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        recorder: Recorder | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.recorder: Recorder = recorder or NullRecorder()
        self.clock = clock
        store.ensure(SCHEMA)
        # Freed pages are zeroed: a refused or withdrawn held message leaves no ciphertext.
        store.query("PRAGMA secure_delete = ON")

    # -- accepting ---------------------------------------------------------------------

    def check_space(self, needed: int) -> None:
        """DUR-5: refuse at MAIL while the spool's disk is nearly full (452 4.3.1)."""
        free = shutil.disk_usage(self.store.path.parent).free
        if free < needed:
            raise TempFailure("Insufficient system storage", code=452, enhanced="4.3.1")

    def accept(
        self,
        *,
        queue_id: str,
        staff: str,
        peer: str,
        mail_from: str,
        rcpt_tos: Iterable[str],
        content: bytes,
        annotations: dict[str, Any] | None = None,
        held: bool = False,
        also: Callable[[sqlite3.Connection, Accepted], None] | None = None,
    ) -> Accepted:
        """Seal and commit; returns only once the message is durable (then answer 250).

        ``held``: the message waits for a line manager (state ``held``). ``also`` runs in
        the same transaction after the register's record (a hold and its notice).
        """
        with self.store.transaction() as conn:
            return self.insert(
                conn,
                queue_id=queue_id,
                staff=staff,
                peer=peer,
                mail_from=mail_from,
                rcpt_tos=rcpt_tos,
                content=content,
                annotations=annotations,
                held=held,
                also=also,
            )

    def insert(
        self,
        conn: sqlite3.Connection,
        *,
        queue_id: str,
        staff: str,
        peer: str,
        mail_from: str,
        rcpt_tos: Iterable[str],
        content: bytes,
        annotations: dict[str, Any] | None = None,
        held: bool = False,
        also: Callable[[sqlite3.Connection, Accepted], None] | None = None,
    ) -> Accepted:
        """:meth:`accept` inside the caller's write transaction (a notice the gateway
        sends as part of another change: it is queued if and only if that change is)."""
        now = self.clock()
        rcpts = tuple(rcpt_tos)
        notes = annotations or {}
        envelope = json.dumps(
            {
                "staff": staff,
                "peer": peer,
                "mail_from": mail_from,
                "rcpt_tos": rcpts,
                "received_at": now,
                "annotations": notes,
            },
            separators=(",", ":"),
        ).encode()
        blob = self.keyring.seal(
            len(envelope).to_bytes(4, "big") + envelope + content, queue_id.encode()
        )
        event = Accepted(
            queue_id=queue_id,
            received_at=now,
            staff=staff,
            peer=peer,
            mail_from=mail_from,
            rcpt_tos=rcpts,
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            annotations=notes,
        )
        conn.execute(
            "INSERT INTO queue (id, created, staff, size, sha256, state, next_attempt, blob)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                queue_id,
                now,
                staff,
                len(content),
                event.sha256,
                "held" if held else "queued",
                now,
                blob,
            ),
        )
        conn.executemany(
            "INSERT INTO queue_rcpt (queue_id, idx, state) VALUES (?, ?, 'pending')",
            [(queue_id, i) for i in range(len(rcpts))],
        )
        self.recorder.accepted(conn, event)
        if also is not None:
            also(conn, event)
        return event

    # -- delivering --------------------------------------------------------------------

    def due(self, limit: int, exclude: set[str]) -> list[str]:
        rows = self.store.query(
            "SELECT id FROM queue WHERE state = 'queued' AND next_attempt <= ?"
            " ORDER BY next_attempt LIMIT ?",
            (self.clock(), limit + len(exclude)),
        )
        return [r["id"] for r in rows if r["id"] not in exclude][:limit]

    def load(self, queue_id: str) -> Spooled | None:
        """The message, decrypted; None if it is gone. Quarantines it if it fails its check."""
        rows = self.store.query(
            "SELECT created, staff, attempts, state, blob FROM queue WHERE id = ?", (queue_id,)
        )
        if not rows:
            return None
        row = rows[0]
        try:
            plain = self.keyring.open(row["blob"], queue_id.encode())
            n = int.from_bytes(plain[:4], "big")
            env = json.loads(plain[4 : 4 + n])
            content = plain[4 + n :]
        except (SpoolCorrupt, ValueError, KeyError, TypeError) as exc:
            self.quarantine(queue_id, str(exc))
            raise SpoolCorrupt(str(exc)) from exc
        pending = tuple(
            r["idx"]
            for r in self.store.query(
                "SELECT idx FROM queue_rcpt WHERE queue_id = ? AND state = 'pending' ORDER BY idx",
                (queue_id,),
            )
        )
        return Spooled(
            queue_id=queue_id,
            created=row["created"],
            staff=row["staff"],
            peer=env["peer"],
            mail_from=env["mail_from"],
            rcpt_tos=tuple(env["rcpt_tos"]),
            content=content,
            annotations=env["annotations"],
            attempts=row["attempts"],
            pending=pending,
        )

    def quarantine(self, queue_id: str, reason: str) -> None:
        self._move(queue_id, "queued", "corrupt", reason)
        log.error("spool_corrupt", queue_id=queue_id, reason=reason)

    def recheck(self, queue_id: str) -> bool:
        """Put a set-aside message back in the queue if it now passes its check.

        For the admin who restored a lost key file (``queue retry``); a message that
        still fails stays set aside, untouched.
        """
        rows = self.store.query(
            "SELECT blob FROM queue WHERE id = ? AND state = 'corrupt'", (queue_id,)
        )
        if not rows:
            return False
        try:
            self.keyring.open(rows[0]["blob"], queue_id.encode())
        except SpoolCorrupt:
            return False
        self._move(queue_id, "corrupt", "queued", "passed its integrity check again")
        self.retry_now(queue_id)
        log.info("spool_recovered", queue_id=queue_id)
        return True

    def release(self, conn: sqlite3.Connection, queue_id: str) -> bool:
        """A held message becomes due now (inside the approval's transaction)."""
        cur = conn.execute(
            "UPDATE queue SET state = 'queued', next_attempt = ? WHERE id = ? AND state = 'held'",
            (self.clock(), queue_id),
        )
        return cur.rowcount == 1

    def discard(self, conn: sqlite3.Connection, queue_id: str) -> bool:
        """Remove a held message (inside the refusal's transaction); call :meth:`shred`
        after the commit so no copy of its pages stays in the file or the log."""
        cur = conn.execute("DELETE FROM queue WHERE id = ? AND state = 'held'", (queue_id,))
        return cur.rowcount == 1

    def shred(self) -> None:
        """Empty the write-ahead log into the file: with ``secure_delete`` the removed
        message's pages are zeroed, so its ciphertext survives neither in the database
        file nor in the WAL (the sealed blob is already unreadable without the spool key)."""
        self.store.query("PRAGMA wal_checkpoint(TRUNCATE)")

    def _move(self, queue_id: str, old: str, new: str, reason: str) -> None:
        if (old, new) not in _MOVES:  # the table above is the whole state machine
            raise ValueError(f"no move from {old} to {new}")
        self.store.execute(
            "UPDATE queue SET state = ?, last_error = ? WHERE id = ? AND state = ?",
            (new, self._seal_note(queue_id, reason), queue_id, old),
        )

    def finish(
        self,
        msg: Spooled,
        *,
        delivered: Iterable[int],
        bounced: Iterable[int],
        outcomes: Iterable[Outcome],
        retry_at: float | None,
        error: str,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Record one attempt's results in one transaction with the register's records.

        ``retry_at`` None means nothing is left to try: the row is removed. ``also`` runs
        in the same transaction (the bounce to the sender).
        """
        done = [(msg.queue_id, i) for i in delivered]
        failed = [(msg.queue_id, i) for i in bounced]
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE queue_rcpt SET state = 'delivered' WHERE queue_id = ? AND idx = ?", done
            )
            conn.executemany(
                "UPDATE queue_rcpt SET state = 'bounced' WHERE queue_id = ? AND idx = ?", failed
            )
            if also is not None:
                also(conn)
            for outcome in outcomes:
                self.recorder.outcome(conn, outcome)
            if retry_at is None:
                conn.execute("DELETE FROM queue WHERE id = ?", (msg.queue_id,))
            else:
                conn.execute(
                    "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_error = ?"
                    " WHERE id = ?",
                    (retry_at, self._seal_note(msg.queue_id, error), msg.queue_id),
                )

    # -- administration ----------------------------------------------------------------

    def rows(self) -> list[QueueRow]:
        out = []
        for r in self.store.query(
            "SELECT q.id, q.created, q.staff, q.size, q.state, q.attempts, q.next_attempt,"
            " q.last_error, (SELECT count(*) FROM queue_rcpt p WHERE p.queue_id = q.id"
            " AND p.state = 'pending') AS pending FROM queue q ORDER BY q.created"
        ):
            out.append(
                QueueRow(
                    queue_id=r["id"],
                    created=r["created"],
                    staff=r["staff"],
                    size=r["size"],
                    state=r["state"],
                    attempts=r["attempts"],
                    next_attempt=r["next_attempt"],
                    last_error=self._open_note(r["id"], r["last_error"]),
                    pending=r["pending"],
                )
            )
        return out

    def retry_now(self, queue_id: str) -> bool:
        return (
            self.store.execute(
                "UPDATE queue SET next_attempt = ? WHERE id = ? AND state = 'queued'",
                (self.clock(), queue_id),
            )
            == 1
        )

    def delete(self, queue_id: str) -> bool:
        """Remove a queued or set-aside message; a held one only goes through a decision
        (gateway.holds.service), so that the register records who refused it."""
        return (
            self.store.execute("DELETE FROM queue WHERE id = ? AND state != 'held'", (queue_id,))
            == 1
        )

    def _seal_note(self, queue_id: str, note: str) -> bytes:
        # Upstream replies can quote recipient addresses: sealed like the message.
        return self.keyring.seal(note.encode(), b"note:" + queue_id.encode())

    def _open_note(self, queue_id: str, blob: bytes | None) -> str:
        if not blob:
            return ""
        try:
            return self.keyring.open(blob, b"note:" + queue_id.encode()).decode()
        except SpoolCorrupt:
            return "(unreadable note)"
