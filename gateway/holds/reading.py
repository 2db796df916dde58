"""An approver reads a held message before deciding: its text and its attachments.

Decrypted only for someone the holds rules let see it (the sender, the sender's line
managers, an admin: :meth:`gateway.holds.service.Holds.may_see`, checked by the caller),
and every reading is written into the register's admin trail in its own transaction, so
a line manager reviewing the register sees who read which held message, and when.
"""

from __future__ import annotations

from gateway.errors import SpoolCorrupt
from gateway.holds.held import HeldMessage
from gateway.mail.content import Content
from gateway.mail.readable import Attachment, Readable, attachment, readable
from gateway.queue.spool import Spool
from gateway.register.ledger import AdminAudit


class Unreadable(Exception):
    """The held message cannot be opened now; ``str(exc)`` says why, for the reader."""


def read_text(spool: Spool, held: HeldMessage, reader: str, audit: AdminAudit) -> Readable:
    """The text and the attachment list of ``held``, for ``reader`` (recorded)."""
    content = _content(spool, held)
    _record(spool, audit, reader, held, "text")
    return readable(content)


def read_attachment(
    spool: Spool, held: HeldMessage, number: int, reader: str, audit: AdminAudit
) -> tuple[Attachment, bytes] | None:
    """Attachment ``number`` of ``held`` for ``reader`` (recorded); None if there is none."""
    found = attachment(_content(spool, held), number)
    if found is not None:
        _record(spool, audit, reader, held, f"attachment {number}")
    return found


def _content(spool: Spool, held: HeldMessage) -> Content:
    try:
        msg = spool.read(held.queue_id)
    except SpoolCorrupt:
        raise Unreadable(
            f"{held.queue_id} fails its integrity check and cannot be shown; ask an admin"
        ) from None
    if msg is None:
        raise Unreadable(f"no message {held.queue_id} is waiting for approval")
    return msg.content


def _record(spool: Spool, audit: AdminAudit, reader: str, held: HeldMessage, what: str) -> None:
    with spool.store.transaction() as conn:
        audit(conn, reader, "held message read", {"queue_id": held.queue_id, "read": what})
