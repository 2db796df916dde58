"""What the register keeps of each event the engine records: the personal part of the
entry (sealed per entry by :mod:`gateway.register.codec`) for a message accepted, refused,
delivered or held. :class:`~gateway.register.ledger.Register` appends it, inside the
engine's transaction (the :class:`gateway.events.Recorder` methods)."""

from __future__ import annotations

from typing import Any

from gateway.events import Accepted, HoldEvent, Outcome, RefusedEvent
from gateway.register.fields import disclosure_fields, recipients_of
from gateway.register.message import Summary


def accepted_personal(event: Accepted, summary: Summary) -> dict[str, Any]:
    """A message accepted, read as ``summary``; the gateway's own notices to staff too."""
    personal: dict[str, Any] = {
        "staff": event.staff,
        "peer": event.peer,
        "mail_from": event.mail_from,
        "recipients": recipients_of(event.rcpt_tos, event.annotations),
        "message_id": summary.message_id,
        "subject": summary.subject,
        "attachments": summary.attachments,
        "reply": f"250 2.0.0 Queued as {event.queue_id}",
        **disclosure_fields(event.annotations),
    }
    if not event.staff:
        # The gateway's own notice (a bounce, a hold notice) to staff: recorded, but it
        # discloses nothing to anyone outside, so no consent status is asked of it.
        personal["external"] = False
        for key in ("bounce_for", "notice_for", "notice"):
            if key in event.annotations:
                personal[key] = str(event.annotations[key])
    return personal


def refused_personal(event: RefusedEvent) -> dict[str, Any]:
    """A message refused, with the recipient refused (``address``) among its recipients."""
    rcpts = list(event.rcpt_tos) + ([event.address] if event.address else [])
    personal = {
        "staff": event.staff,
        "peer": event.peer,
        "mail_from": event.mail_from,
        "recipients": recipients_of(rcpts, event.annotations),
        "phase": event.phase,
        "address": event.address,
        "reply": event.reply,
        "reference": event.reference,
        **disclosure_fields(event.annotations),
    }
    return personal


def outcome_personal(event: Outcome) -> dict[str, Any]:
    """A delivery attempt's outcome for some recipients, with the TLS evidence."""
    ev = event.evidence
    personal = {
        "status": event.status,
        "attempt": event.attempt,
        "recipients": list(event.recipients),
        "reply": event.reply,
        "evidence": {
            "host": ev.host,
            "tls_version": ev.tls_version,
            "cipher": ev.cipher,
            "cert_sha256": ev.cert_sha256,
        },
    }
    return personal


def hold_personal(event: HoldEvent) -> dict[str, Any]:
    """A step of a line manager's approval: the action, who, their note and changes."""
    personal: dict[str, Any] = {"action": event.action, "actor": event.actor}
    if event.note:
        personal["note"] = event.note
    if event.reasons:
        personal["reasons"] = list(event.reasons)
    if event.consent:
        personal["consent"] = event.consent
    if event.changes:
        personal["changes"] = dict(event.changes)
    return personal
