"""The durable, encrypted queue.

A message is accepted by ONE SQLite transaction (``synchronous=FULL``, so it is on disk
when COMMIT returns) that writes the sealed message, one row per recipient and the
register's record. Only after that commit does the client get its 250; a crash at any
earlier point leaves no trace, a crash after it loses nothing (RFC 5321 6.1). Messages
accepted at the same time share that transaction and its fsync (group commit,
:meth:`gateway.store.Store.together`), each in a savepoint of its own; the sealing is
done before, outside the database's lock.

Why SQLite rather than one file per message: the acceptance is then a single atomic
step that includes the register entry, so there is no window where a message is on
disk without its record or the other way round. Only a large body (over 64 KiB) is kept
in a file of its own, written and made durable before its row, under a key that only
the row's sealed envelope holds (:mod:`gateway.queue.bodies`): the row is still the one
step that queues the message, and the whole body is no longer written under the
database's write lock, into its log, its file and zeroed again. The sealed blob is
AES-256-GCM bound to its queue ID, so nothing of the body, subject or recipients is
readable on disk, and a damaged or altered blob (or body file) fails its tag: the
message is then quarantined (state ``corrupt``), shown by ``queue list``, never sent and
never silently dropped (DUR-4). The states and the moves between them are
:mod:`gateway.queue.states`, with what an admin sees and does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, Unpack

import structlog

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt, TempFailure
from gateway.events import Accepted, NullRecorder, Outcome, Recorder
from gateway.mail.content import Content
from gateway.mail.wire import has_bare_line_end_or_nul
from gateway.queue import leases, release
from gateway.queue.bodies import IN_FILE_OVER, BodyFiles, bodies_folder
from gateway.queue.schema import SCHEMA
from gateway.queue.sealed import open_message, seal_message, seal_note, seal_staff
from gateway.queue.states import UNDECIDED, QueueRow, QueueStates
from gateway.store import Store

log = structlog.get_logger("gateway.spool")

# A message up to this size is sealed on the event loop (about a tenth of a millisecond
# for 10 KB): handing it to a worker thread and back would cost more than the sealing.
SEAL_ON_LOOP = 64 * 1024


def new_queue_id() -> str:
    """12 characters, unguessable, safe in logs and headers."""
    return secrets.token_hex(6).upper()


class Attempt(TypedDict):
    """One delivery attempt's results, as :meth:`Spool.finish` records them."""

    delivered: Iterable[int]
    bounced: Iterable[int]
    outcomes: Iterable[Outcome]
    retry_at: float | None
    error: str
    also: NotRequired[Callable[[sqlite3.Connection], None] | None]


class Message(TypedDict):
    """A message to accept, as :meth:`Spool.accept`, ``accept_async``, ``insert`` and
    ``sealed`` take it. ``held``: it waits for a line manager (state ``held``). ``also``
    runs in the same transaction after the register's record (a hold and its notice).
    ``lease``: (owner, until), taken in the same transaction by the worker that then
    delivers it from memory (:func:`gateway.queue.leases.take`). ``clean``: the caller
    has checked that the content has no bare CR, bare LF or NUL (the submission handler,
    MIME-7); without it the spool checks. Sealed with the message, so delivery checks it
    again only for content that was not clean (SMUG-12)."""

    queue_id: str
    staff: str
    peer: str
    mail_from: str
    rcpt_tos: Iterable[str]
    content: Content
    annotations: NotRequired[dict[str, Any] | None]
    held: NotRequired[bool]
    also: NotRequired[Callable[[sqlite3.Connection, Accepted], None] | None]
    clean: NotRequired[bool]
    lease: NotRequired[tuple[str, float] | None]


@dataclass(frozen=True)
class Spooled:
    queue_id: str
    created: float
    staff: str
    peer: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: Content
    annotations: dict[str, Any]
    attempts: int
    pending: tuple[int, ...]  # indexes into rcpt_tos still to deliver
    # Checked at acceptance: no bare CR, bare LF or NUL (else delivery repairs line ends).
    clean: bool = False


class Spool(QueueStates):
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
        self.bodies = BodyFiles(bodies_folder(store.path))
        store.ensure(SCHEMA)
        # Freed pages are zeroed: a refused or withdrawn held message leaves no ciphertext.
        store.query("PRAGMA secure_delete = ON")

    # -- accepting ---------------------------------------------------------------------

    def check_space(self, needed: int) -> None:
        """DUR-5: refuse at MAIL while the spool's disk is nearly full (452 4.3.1)."""
        free = shutil.disk_usage(self.store.path.parent).free
        if free < needed:
            raise TempFailure("Insufficient system storage", code=452, enhanced="4.3.1")

    def accept(self, **message: Unpack[Message]) -> Accepted:
        """Seal, then commit together with other sessions' acceptances (group commit:
        :meth:`Store.together`); returns only once the message is durable (then answer
        250), and raises if the commit that was to cover it failed (then 451)."""
        try:
            return self.store.together(self.sealed(in_file=True, **message))
        except Exception as exc:
            self._not_accepted(message, exc)
            raise

    async def accept_async(self, **message: Unpack[Message]) -> Accepted:
        """:meth:`accept` from the event loop: sealed (in a worker thread, unless it is
        small enough that the hop to one would cost more), then committed with no thread
        waiting for the disk."""
        try:
            if len(message["content"]) <= SEAL_ON_LOOP:
                write = self.sealed(in_file=True, **message)
            else:
                seal = functools.partial(self.sealed, in_file=True, **message)
                write = await asyncio.to_thread(seal)
            return await self.store.together_async(write)
        except Exception as exc:
            self._not_accepted(message, exc)
            raise

    def _not_accepted(self, message: Message, exc: Exception) -> None:
        """Its row was not committed: remove the body file it wrote, if it wrote one (a
        file already there under its ID is another message's, and stays)."""
        if len(message["content"]) > IN_FILE_OVER and not isinstance(exc, FileExistsError):
            self.bodies.remove(message["queue_id"])

    def insert(self, conn: sqlite3.Connection, **message: Unpack[Message]) -> Accepted:
        """:meth:`accept` inside the caller's write transaction (a notice the gateway
        sends as part of another change: it is queued if and only if that change is).
        Kept in its row whatever its size: a file would outlive a transaction rolled back."""
        return self.sealed(**message)(conn)

    def sealed(
        self, *, in_file: bool = False, **message: Unpack[Message]
    ) -> Callable[[sqlite3.Connection], Accepted]:
        """The message sealed now, outside any transaction (the costly part); the function
        returned writes it, its recipients and the register's record in a transaction.
        ``in_file``: a body over IN_FILE_OVER is sealed into its own file, durable before
        the row is written (:mod:`gateway.queue.bodies`); the caller removes the file if
        the transaction fails. The function returns the :class:`Accepted` the register
        recorded, without its content."""
        queue_id, staff, peer = message["queue_id"], message["staff"], message["peer"]
        mail_from, content = message["mail_from"], message["content"]
        held, also, lease = message.get("held", False), message.get("also"), message.get("lease")
        now = self.clock()
        rcpts = tuple(message["rcpt_tos"])
        notes = message.get("annotations") or {}
        envelope = {
            "staff": staff,
            "peer": peer,
            "mail_from": mail_from,
            "rcpt_tos": rcpts,
            "received_at": now,
            "annotations": notes,
            # Sealed with the message: a message that was held needs a proof of approval
            # to be delivered, whatever its row says later (HOLD-1).
            "held": held,
            "clean": message.get("clean") or not has_bare_line_end_or_nul(content),
        }
        # Read for the register here, not under the write lock; and before sealing, so the
        # parser's memory and the sealed copy are not needed at the same time.
        summary = self.recorder.summarise(content)
        if in_file and len(content) > IN_FILE_OVER:
            # The file's key travels only in the sealed envelope: gone with the row.
            envelope["body_key"] = self.bodies.write(queue_id, content).hex()
            blob = seal_message(self.keyring, queue_id, envelope, b"")
        else:
            blob = seal_message(self.keyring, queue_id, envelope, content)
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
            summary=summary,
        )
        row = (
            queue_id,
            now,
            seal_staff(self.keyring, queue_id, staff),
            len(content),
            event.sha256,
            "held" if held else "queued",
            now,
            len(blob),
        )

        def write(conn: sqlite3.Connection) -> Accepted:
            rowid = conn.execute(
                "INSERT INTO queue (id, created, staff, size, sha256, state, next_attempt, blob)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, zeroblob(?)) RETURNING rowid",
                row,
            ).fetchone()[0]
            # Written into its place, not bound: SQLite keeps a copy of a bound value in
            # the cached statement until the next message (25 MB for a large one).
            with conn.blobopen("queue", "blob", rowid) as out:
                out.write(blob)
            conn.executemany(
                "INSERT INTO queue_rcpt (queue_id, idx, state) VALUES (?, ?, 'pending')",
                [(queue_id, i) for i in range(len(rcpts))],
            )
            self.recorder.accepted(conn, event)
            if also is not None:
                also(conn, event)
            if lease is not None:
                leases.take(conn, queue_id, *lease)
            # Returned without the message: the caller has it, and the commit thread
            # should not hold it once the caller goes on (GroupCommit._commit).
            return dataclasses.replace(event, content=b"")

        return write

    # -- delivering --------------------------------------------------------------------

    @staticmethod
    def in_memory(message: Message, accepted: Accepted) -> Spooled:
        """A message just accepted, as :meth:`load` would read it back: for the worker
        that leased it in its acceptance (``lease``) to deliver it without reading it."""
        rcpts = tuple(message["rcpt_tos"])
        return Spooled(
            queue_id=accepted.queue_id,
            created=accepted.received_at,
            staff=accepted.staff,
            peer=accepted.peer,
            mail_from=accepted.mail_from,
            rcpt_tos=rcpts,
            content=message["content"],
            annotations=dict(accepted.annotations),
            attempts=0,
            pending=tuple(range(len(rcpts))),
            clean=bool(message.get("clean")),
        )

    def load(self, queue_id: str) -> Spooled | None:
        """The message, decrypted, for delivery; None if it is gone or may not be sent.

        Quarantines it if it fails its check. A message that was held opens only with its
        proof of approval, whatever its row's state says; without one it is set aside as
        ``unapproved`` and None is returned (HOLD-1)."""
        opened = self._open(queue_id)
        if opened is None:
            return None
        msg, held, proof = opened
        if held:
            sha256 = hashlib.sha256(msg.content).hexdigest()
            if not release.approved(self.keyring, queue_id, sha256, proof):
                self.set_aside_unapproved(queue_id)
                return None
        return msg

    def read(self, queue_id: str) -> Spooled | None:
        """The message, decrypted, for its approver to read while it is held; never for
        delivery (use :meth:`load`). Quarantines it if it fails its check."""
        opened = self._open(queue_id)
        return None if opened is None else opened[0]

    def _open(self, queue_id: str) -> tuple[Spooled, bool, bytes | None] | None:
        """(message, whether it was held, its proof of approval if any)."""
        rows = self.store.query(
            "SELECT created, attempts, blob,"
            " (SELECT proof FROM queue_release r WHERE r.queue_id = q.id) AS proof"
            " FROM queue q WHERE id = ?",
            (queue_id,),
        )
        if not rows:
            return None
        row = rows[0]
        content: Content  # in the row, or (a large body) in a file of its own
        try:
            env, content = open_message(self.keyring, queue_id, row["blob"])
            staff, peer, mail_from = env["staff"], env["peer"], env["mail_from"]
            rcpt_tos, annotations = tuple(env["rcpt_tos"]), env["annotations"]
            if "body_key" in env:
                content = self.bodies.read(queue_id, bytes.fromhex(env["body_key"]))
        except (SpoolCorrupt, KeyError, TypeError, ValueError) as exc:
            self.quarantine(queue_id, str(exc))
            raise SpoolCorrupt(str(exc)) from exc
        pending = tuple(
            r["idx"]
            for r in self.store.query(
                "SELECT idx FROM queue_rcpt WHERE queue_id = ? AND state = 'pending' ORDER BY idx",
                (queue_id,),
            )
        )
        msg = Spooled(
            queue_id=queue_id,
            created=row["created"],
            staff=staff,
            peer=peer,
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            content=content,
            annotations=annotations,
            attempts=row["attempts"],
            pending=pending,
            clean=env.get("clean") is True,
        )
        return msg, _was_held(env), row["proof"]

    def release(self, conn: sqlite3.Connection, queue_id: str, approver: str) -> bool:
        """A held message becomes due now, with its proof of approval (inside the
        approval's transaction, which also writes the register's record)."""
        found = conn.execute(
            f"SELECT sha256 FROM queue WHERE id = ? AND {UNDECIDED}",  # noqa: S608
            (queue_id,),
        ).fetchone()
        if found is None:
            return False
        now = self.clock()
        proof = release.make_proof(self.keyring, queue_id, found["sha256"], approver, now)
        conn.execute(
            "INSERT OR REPLACE INTO queue_release (queue_id, proof) VALUES (?, ?)",
            (queue_id, proof),
        )
        conn.execute(
            "UPDATE queue SET state = 'queued', next_attempt = ?, last_error = NULL WHERE id = ?",
            (now, queue_id),
        )
        return True

    def discard(self, conn: sqlite3.Connection, queue_id: str) -> bool:
        """Remove a held message (inside the refusal's transaction); call :meth:`shred`
        with its ID after the commit so no copy of its pages stays in the file or the log,
        and its body file, if it has one, goes."""
        cur = conn.execute(
            f"DELETE FROM queue WHERE id = ? AND {UNDECIDED}",  # noqa: S608
            (queue_id,),
        )
        return cur.rowcount == 1

    def shred(self, *queue_ids: str) -> None:
        """After the commit that removed ``queue_ids``: unlink their body files, and empty
        the write-ahead log into the database: with ``secure_delete`` the removed rows'
        pages (a body file's key among them) are zeroed, so their ciphertext survives
        neither in the database file nor in the WAL, and what stays of a body file on the
        disk has no key left anywhere (the sealed values were already unreadable without
        the spool key)."""
        self.bodies.remove(*queue_ids)
        self.store.query("PRAGMA wal_checkpoint(TRUNCATE)")

    def finish(self, msg: Spooled, **attempt: Unpack[Attempt]) -> None:
        """Record one attempt's results in one transaction with the register's records
        (shared with other writers': :meth:`Store.together`), returning once committed.

        ``retry_at`` None means nothing is left to try: the row is removed. ``also`` runs
        in the same transaction (the bounce to the sender).
        """
        self.store.together(self._finished(msg, **attempt))
        if attempt["retry_at"] is None:
            self.bodies.remove(msg.queue_id)  # its key went with the row

    async def finish_async(self, msg: Spooled, **attempt: Unpack[Attempt]) -> None:
        """:meth:`finish` from the event loop: committed with the other deliveries and
        acceptances that finish together, with no thread waiting for the disk."""
        await self.store.together_async(self._finished(msg, **attempt))
        if attempt["retry_at"] is None:
            self.bodies.remove(msg.queue_id)  # its key went with the row

    def _finished(
        self, msg: Spooled, **attempt: Unpack[Attempt]
    ) -> Callable[[sqlite3.Connection], None]:
        delivered, bounced = attempt["delivered"], attempt["bounced"]
        outcomes, retry_at, error = attempt["outcomes"], attempt["retry_at"], attempt["error"]
        also = attempt.get("also")
        done = [(msg.queue_id, i) for i in delivered]
        failed = [(msg.queue_id, i) for i in bounced]

        def write(conn: sqlite3.Connection) -> None:
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
                leases.end(conn, msg.queue_id)  # deleting the row above ends it too
                conn.execute(
                    "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_error = ?"
                    " WHERE id = ?",
                    (retry_at, seal_note(self.keyring, msg.queue_id, error), msg.queue_id),
                )

        return write


def _was_held(envelope: dict[str, Any]) -> bool:
    """Whether the message was held at acceptance, from what was sealed with it. Messages
    spooled before the envelope said so carry the approval policy's ``hold`` annotation."""
    notes = envelope.get("annotations")
    return bool(envelope.get("held")) or (isinstance(notes, dict) and bool(notes.get("hold")))


__all__ = ["Message", "QueueRow", "Spool", "Spooled", "new_queue_id"]
