"""What the engine tells the disclosure register (or any other recorder) as mail moves.

The spool and the delivery worker call a :class:`Recorder` *inside* the same SQLite
transaction that changes the queue, so a message is never accepted, or marked
delivered, without its record (and a failing record undoes the change: fail closed).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Accepted:
    queue_id: str
    received_at: float  # epoch seconds
    staff: str  # authenticated login ("" for messages the gateway generates, e.g. bounces)
    peer: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes | bytearray  # the exact bytes that will be relayed
    sha256: str  # hex digest of content
    annotations: dict[str, Any] = field(default_factory=dict)
    # What the recorder notes of the content (Recorder.summarise), worked out before the
    # transaction; None: the recorder reads the content itself.
    summary: Any = None


@dataclass(frozen=True)
class RefusedEvent:
    queue_id: str
    at: float
    staff: str
    peer: str
    phase: Literal["mail", "rcpt", "data"]
    mail_from: str
    rcpt_tos: tuple[str, ...]  # recipients accepted so far in the transaction
    address: str  # the address refused (rcpt phase) or ""
    reply: str  # the full SMTP reply sent, e.g. "550 5.7.1 ... [ref R-1A2B]"
    reference: str
    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """How a delivery attempt left: enough for a manager to trust the register."""

    host: str = ""
    tls_version: str = ""
    cipher: str = ""
    cert_sha256: str = ""


@dataclass(frozen=True)
class Outcome:
    queue_id: str
    at: float
    attempt: int
    status: Literal["delivered", "deferred", "bounced"]
    recipients: tuple[str, ...]
    reply: str  # the upstream's reply (or our reason when there was none)
    evidence: Evidence = field(default_factory=Evidence)


# "completed": the sender gave the missing details and no hold rule applies any more.
HoldAction = Literal["held", "approved", "refused", "withdrawn", "expired", "completed"]


@dataclass(frozen=True)
class HoldEvent:
    """A step in a held message's life: held at acceptance, then one decision."""

    queue_id: str
    at: float
    action: HoldAction
    actor: str  # the manager, admin or staff member who decided ("" for the gateway)
    note: str = ""
    reasons: tuple[str, ...] = ()  # why it was held (on "held")
    consent: str = ""  # on "approved": the consent status the approver recorded, if any
    changes: dict[str, Any] = field(default_factory=dict)  # on "completed": what was given


class Recorder(Protocol):
    def summarise(self, content: bytes | bytearray) -> Any:
        """What :meth:`accepted` will note of a message, worked out before its transaction
        (``Accepted.summary``): parsing a large message must not hold the database's write
        lock, which every other session's commit waits for."""
        ...

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None: ...
    def refused(self, conn: sqlite3.Connection, event: RefusedEvent) -> None: ...
    def outcome(self, conn: sqlite3.Connection, event: Outcome) -> None: ...
    def hold(self, conn: sqlite3.Connection, event: HoldEvent) -> None: ...


class NullRecorder:
    """Records nothing (used until a register is configured, and in unit tests)."""

    def summarise(self, content: bytes | bytearray) -> Any:
        return None

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        return None

    def refused(self, conn: sqlite3.Connection, event: RefusedEvent) -> None:
        return None

    def outcome(self, conn: sqlite3.Connection, event: Outcome) -> None:
        return None

    def hold(self, conn: sqlite3.Connection, event: HoldEvent) -> None:
        return None
