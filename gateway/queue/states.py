"""The states of a queued message, the moves between them, and what an admin sees and does.

Queue states (the only moves made by hand are in ``_MOVES``)::

    queued  --delivered to every recipient-->  (row removed; the register keeps the record)
    queued  --some recipient bounced-------->  (row removed; the DSN queued in the same step)
    queued  --integrity check failed-------->  corrupt
    corrupt --admin retries, check passes--->  queued   (e.g. a lost key file was restored)
    corrupt --admin deletes----------------->  (row removed)
    held    --a line manager approves------->  queued   (with its proof: gateway.queue.release)
    held    --refused, withdrawn, expired--->  (row removed and shredded)
    queued  --was held, no proof of approval->  unapproved  (HOLD-1: set aside, never sent)
    unapproved --a decision----------------->  as from held (the decision still stands)
    unapproved --admin deletes-------------->  (row removed)

A ``held`` message is never picked up by the delivery worker: only an approval moves it,
and the proof the approval writes is checked whenever a message that was held is opened
for delivery, so a state changed by hand in the database file releases nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt
from gateway.queue.bodies import BodyFiles
from gateway.queue.sealed import open_message, open_note, open_staff, seal_note
from gateway.store import Store

log = structlog.get_logger("gateway.spool")

_MOVES = {
    ("queued", "corrupt"),
    ("corrupt", "queued"),
    ("queued", "unapproved"),
}
# Awaiting a line manager's decision: held, or released by hand and set aside (HOLD-1).
UNDECIDED_STATES = ("held", "unapproved")
UNDECIDED = f"state IN {UNDECIDED_STATES}"  # the SQL: state IN ('held', 'unapproved')
UNAPPROVED = "was held, and released without a recorded approval"


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


class QueueStates:
    """The part of :class:`gateway.queue.spool.Spool` that moves rows between states and
    serves ``queue list|retry|delete`` and the console's queue page."""

    store: Store
    keyring: Keyring
    bodies: BodyFiles
    clock: Callable[[], float]

    def quarantine(self, queue_id: str, reason: str) -> None:
        self._move(queue_id, "queued", "corrupt", reason)
        log.error("spool_corrupt", queue_id=queue_id, reason=reason)

    def set_aside_unapproved(self, queue_id: str) -> None:
        """HOLD-1: a message that was held was opened for delivery with no proof of
        approval. Set aside if it is queued; a held one stays held, awaiting its decision."""
        self._move(queue_id, "queued", "unapproved", UNAPPROVED)
        log.error("held_release_unproven", queue_id=queue_id)

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
            envelope, _ = open_message(self.keyring, queue_id, rows[0]["blob"])
            if "body_key" in envelope:  # and its body file (gateway.queue.bodies)
                self.bodies.read(queue_id, bytes.fromhex(envelope["body_key"]))
        except (SpoolCorrupt, TypeError, ValueError):
            return False
        self._move(queue_id, "corrupt", "queued", "passed its integrity check again")
        self.retry_now(queue_id)
        log.info("spool_recovered", queue_id=queue_id)
        return True

    def _move(self, queue_id: str, old: str, new: str, reason: str) -> None:
        if (old, new) not in _MOVES:  # the table above is the whole state machine
            raise ValueError(f"no move from {old} to {new}")
        self.store.execute(
            "UPDATE queue SET state = ?, last_error = ? WHERE id = ? AND state = ?",
            (new, seal_note(self.keyring, queue_id, reason), queue_id, old),
        )

    # -- administration ----------------------------------------------------------------

    def rows(self) -> list[QueueRow]:
        return [
            QueueRow(
                queue_id=r["id"],
                created=r["created"],
                staff=open_staff(self.keyring, r["id"], r["staff"]),
                size=r["size"],
                state=r["state"],
                attempts=r["attempts"],
                next_attempt=r["next_attempt"],
                last_error=open_note(self.keyring, r["id"], r["last_error"]),
                pending=r["pending"],
            )
            for r in self.store.query(
                "SELECT q.id, q.created, q.staff, q.size, q.state, q.attempts, q.next_attempt,"
                " q.last_error, (SELECT count(*) FROM queue_rcpt p WHERE p.queue_id = q.id"
                " AND p.state = 'pending') AS pending FROM queue q ORDER BY q.created"
            )
        ]

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
        deleted = (
            self.store.execute("DELETE FROM queue WHERE id = ? AND state != 'held'", (queue_id,))
            == 1
        )
        if deleted:
            self.bodies.remove(queue_id)  # its key went with the row
        return deleted
