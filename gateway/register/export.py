"""One record as cells: the columns of the register's CSV (``register export``, the
console's download) and its JSON, with every follow-up."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from gateway.register.formats import (
    KIND_DECISIONS,
    PURGED,
    local_time,
    requester,
    yes_no,
)
from gateway.register.record import CONSENT_WORDS, Entry, Record
from gateway.spreadsheet import safe_cell

CSV_COLUMNS = (
    "entry",
    "time",
    "decision",
    "staff",
    "recipients",
    "organisations",
    "subject",
    "message_id",
    "attachments",
    "size",
    "sha256",
    "nature",
    "consent",
    "reason",
    "informed",
    "informed_on",
    "informed_reason",
    "inform_due",
    "family",
    "safeguarding",
    "retention_hold",
    "retention_category",
    "retention_reason",
    "retention_by",
    "retention_review_on",
    "complete",
    "missing",
    "status",
    "reply",
    "concerns",
    "inherited_from",
    "approved_by",
    "approved_at",
    "approval_note",
    "request",
    "requester",
    "received_via",
    "received_on",
    "answers",
    "third_party",
)


def flat(r: Record) -> dict[str, str]:
    """One record as text cells (CSV columns)."""
    d = r.data
    gone = PURGED if r.purged else ""
    return {
        "entry": str(r.seq),
        "time": local_time(r.at, seconds=True),
        "decision": "refused"
        if r.kind == "refused"
        else ("gateway notice" if r.notice else KIND_DECISIONS.get(r.kind, "accepted")),
        "staff": r.staff or gone,
        "recipients": "; ".join(str(x.get("address", "")) for x in r.recipients) or gone,
        "organisations": "; ".join(r.organisations),
        "subject": str(d.get("subject", gone)),
        "message_id": str(d.get("message_id", "")),
        "attachments": "; ".join(
            f"{a['name']} ({_file_words(a)}SHA-256 {a['sha256']})" for a in d.get("attachments", [])
        ),
        "size": str(r.entry.size),
        "sha256": r.entry.sha256,
        "nature": r.nature,
        "consent": CONSENT_WORDS.get(r.consent, r.consent),
        "reason": r.reason,
        "informed": r.informed or "not recorded",
        "informed_reason": r.informed_reason,
        "inform_due": local_time(r.inform_due)[:10] if r.inform_open else "",
        "informed_on": r.informed_on,
        "family": r.family,
        "safeguarding": yes_no(r.safeguarding),
        "retention_hold": yes_no(r.retention_hold),
        **hold_cells(r),
        "complete": yes_no(r.complete),
        "missing": ", ".join(r.missing),
        "status": r.status,
        "reply": str(d.get("reply", "")),
        "concerns": " | ".join(f"{local_time(c['at'])} {c['by']}: {c['text']}" for c in r.concerns),
        "inherited_from": str(r.inherited_from or ""),
        "approved_by": r.approved_by,
        "approved_at": local_time(r.approved_at, seconds=True) if r.approved_by else "",
        "approval_note": r.approval_note,
        **_request_cells(r),
    }


def _request_cells(r: Record) -> dict[str, str]:
    if r.kind != "request":
        return {
            "request": str(r.request or ""),
            "requester": "",
            "received_via": "",
            "received_on": "",
            "answers": "",
            "third_party": yes_no(r.third_party),
        }
    d = r.data
    return {
        "decision": "request received",
        "subject": "",
        "informed": "",
        "request": "",
        "requester": requester(r),
        "received_via": str(d.get("via", "")),
        "received_on": str(d.get("received", "")),
        "answers": "; ".join(map(str, r.answers)),
        "third_party": yes_no(r.third_party),
    }


def _file_words(a: dict[str, Any]) -> str:
    """Type and size of one attachment ("image/jpeg, 48,213 bytes, "); entries written
    before they were recorded have neither."""
    words = [str(a["type"])] if a.get("type") else []
    if "size" in a:
        words.append(f"{int(a['size']):,} bytes")
    return "".join(w + ", " for w in words)


def hold_cells(r: Record) -> dict[str, str]:
    """The hold that keeps a record: category, reason, who set it, review date."""
    h = r.hold
    if h is None:
        return dict.fromkeys(
            ("retention_category", "retention_reason", "retention_by", "retention_review_on"), ""
        )
    return {
        "retention_category": h.category,
        "retention_reason": h.reason + (f" ({h.source})" if h.source != "own hold" else ""),
        "retention_by": h.by,
        "retention_review_on": h.review_on,
    }


def csv_text(records: Iterable[Record]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: safe_cell(v) for k, v in flat(r).items()})
    return out.getvalue()


def entry_dict(e: Entry) -> dict[str, Any]:
    return {
        "entry": e.seq,
        "time": local_time(e.at, seconds=True),
        "kind": e.kind,
        "refers_to": e.ref or None,
        "purged": e.purged,
        **e.data,
    }


def json_record(r: Record) -> dict[str, Any]:
    return {
        **flat(r),
        "entry": r.seq,
        "details": entry_dict(r.entry),
        "followups": [entry_dict(f) for f in r.followups],
    }
