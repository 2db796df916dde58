"""The register for people: aligned tables, entry pages, family reports, CSV and JSON.

Written for a line manager reading a disclosure log: local time, words rather than
codes. CSV cells that a spreadsheet would run as a formula (starting with = + - @, tab
or carriage return) are prefixed with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from gateway.register.duty_words import hold_words, informed_words
from gateway.register.requests import CLAUSE as REQUEST_CLAUSE
from gateway.register.requests import VIA_WORDS
from gateway.register.retention import FAMILY_HOLD
from gateway.register.view import CONSENT_WORDS, Entry, Record

PURGED = "(purged)"
KIND_WORDS = {
    "accepted": "message sent",
    "refused": "message refused",
    "admin": "admin action",
    "purge": "purge",
    "request": "request received",
    FAMILY_HOLD: "family retention hold",
}
KIND_DECISIONS = {FAMILY_HOLD: "family hold"}  # the CSV's decision of the other kinds
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
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


def local_time(ts: float, seconds: bool = False) -> str:
    return (
        datetime.fromtimestamp(ts)
        .astimezone()
        .strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    )


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [list(headers), ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines) + "\n"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _to(r: Record) -> str:
    if r.kind == "request":
        return _short("from " + requester(r), 36)
    addresses = [str(x.get("address", "")) for x in r.recipients]
    if not addresses:
        return PURGED if r.purged else ""
    more = f" +{len(addresses) - 1} more" if len(addresses) > 1 else ""
    return _short(addresses[0], 36) + more


def notes(r: Record) -> str:
    out = []
    if r.purged:
        out.append("purged")
    if r.entry.unreadable:
        out.append("UNREADABLE")
    if r.missing:
        out.append("incomplete: " + " and ".join(r.missing) + " missing")
    if r.inform_open:
        out.append(f"person informed due {local_time(r.inform_due)[:10]}")
    if r.hold is not None:
        out.append(f"retention hold: {r.hold.category} ({r.hold.source})")
    if r.safeguarding:
        out.append("safeguarding")
    if r.concerns:
        out.append("concern recorded")
    if r.approved_by:
        out.append(f"approved by {r.approved_by}")
    return ", ".join(out)


def list_table(records: Sequence[Record]) -> str:
    headers = (
        "Entry",
        "When",
        "Staff",
        "To",
        "Organisation",
        "Consent",
        "Family",
        "Status",
        "Notes",
    )
    rows = [
        (
            str(r.seq),
            local_time(r.at),
            r.staff or ("" if not r.purged else PURGED),
            _to(r),
            _short(", ".join(r.organisations), 30),
            CONSENT_WORDS.get(r.consent, r.consent) if r.kind == "accepted" else "",
            r.family,
            r.status,
            notes(r),
        )
        for r in records
    ]
    return table(headers, rows)


def admin_table(records: Sequence[Record]) -> str:
    headers = ("Entry", "When", "By", "Action", "Details")
    rows = []
    for r in records:
        d = r.data
        if r.kind == "purge":
            count = sum(b - a + 1 for a, b in r.entry.public.get("purged", []))
            action = f"purged {count} entries past the retention period or on request"
        else:
            action = str(d.get("action", PURGED if r.purged else ""))
        details = ", ".join(f"{k}: {v}" for k, v in sorted(d.get("details", {}).items()))
        rows.append(
            (str(r.seq), local_time(r.at), str(d.get("actor", "")), action, _short(details, 60))
        )
    return table(headers, rows)


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


def requester(r: Record) -> str:
    """Who made a request: the agency or person, and the contact it is linked to."""
    d = r.data
    contact = f"contact {d['contact_id']}" if d.get("contact_id") else ""
    linked = ", ".join(str(v) for v in (d.get("organisation"), contact) if v)
    return str(d.get("requester", PURGED if r.purged else "")) + (f" ({linked})" if linked else "")


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
        return dict.fromkeys(("retention_category", "retention_reason", "retention_by"), "") | {
            "retention_review_on": ""
        }
    return {
        "retention_category": h.category,
        "retention_reason": h.reason + (f" ({h.source})" if h.source != "own hold" else ""),
        "retention_by": h.by,
        "retention_review_on": h.review_on,
    }


def safe_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA) else text


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


def followup_line(e: Entry) -> str:
    d = e.data
    when = f"{local_time(e.at)}  #{e.seq}"
    if e.purged:
        return f"{when} {PURGED}"
    if e.kind == "outcome":
        ev = d.get("evidence", {})
        how = ", ".join(x for x in (ev.get("host"), ev.get("tls_version"), ev.get("cipher")) if x)
        cert = f", certificate SHA-256 {ev['cert_sha256']}" if ev.get("cert_sha256") else ""
        to = ", ".join(d.get("recipients", []))
        return (
            f"{when} {d.get('status', '')} (attempt {d.get('attempt', '')}) to {to}"
            + (f" via {how}{cert}" if how else "")
            + f": {d.get('reply', '')}"
        )
    if e.kind == "annotation":
        parts = [_change_words(k, v) for k, v in d.get("changes", {}).items()]
        return f"{when} follow-up by {d.get('actor', '')}: " + "; ".join(parts)
    if e.kind == "hold":
        return f"{when} {_hold_words(d)}"
    if e.kind == FAMILY_HOLD:
        return f"{when} family hold released by {d.get('actor', '')}: {d.get('reason', '')}"
    return f"{when} {e.kind}"


def _hold_words(d: dict[str, Any]) -> str:
    action, actor, note = str(d.get("action", "")), str(d.get("actor", "")), d.get("note")
    if action == "held":
        return "held for line-manager approval: " + ", ".join(d.get("reasons", []))
    words = {
        "approved": f"approved for sending by {actor}"
        + (f", consent recorded as {d['consent']}" if d.get("consent") else ""),
        "refused": f"refused by {actor}",
        "withdrawn": f"withdrawn by {actor}",
        "expired": "expired without approval; not sent",
        "completed": f"details completed by the sender ({actor}): "
        + ", ".join(f"{k} {v}" for k, v in (d.get("changes") or {}).items())
        + "; no hold rule applies any more, so it was released",
    }
    return words.get(action, action) + (f"; note: {note}" if note else "")


def _change_words(key: str, value: Any) -> str:
    words = {
        "informed": "person informed",
        "informed_on": "informed on",
        "hold": "retention hold",
        "concern": "concern",
        "reason": "reason",
        "consent": "consent",
        "family": "family",
        "nature": "nature",
        "safeguarding": "safeguarding",
        "informed_reason": "not informed because",
        "hold_category": "hold category",
        "hold_reason": "hold reason",
        "hold_review_on": "hold review on",
        "third_party": "third-party information",
        "third_party_fields": "third-party parts (withheld from a client copy)",
    }
    if isinstance(value, bool):
        value = yes_no(value)
    if isinstance(value, list):
        value = ", ".join(map(str, value)) or "none"
    if key == "consent":
        value = CONSENT_WORDS.get(str(value), value)
    return f"{words.get(key, key)}: {value}"


def show_text(r: Record) -> str:
    f = flat(r)
    title = KIND_WORDS.get(r.kind, r.kind)
    lines = [f"Entry {r.seq}: {title}"]
    if r.kind == FAMILY_HOLD:
        return family_hold_text(r)
    if r.kind in ("admin", "purge"):
        lines += [f"  {k}: {v}" for k, v in r.data.items()]
        return "\n".join(lines) + "\n"
    recipients = [
        str(x.get("address", ""))
        + (
            f" ({', '.join(v for v in (x.get('display_name'), x.get('organisation')) if v)})"
            if x.get("display_name") or x.get("organisation")
            else ""
        )
        for x in r.recipients
    ]
    pairs = [
        ("When", f["time"] + " (local time)"),
        ("Staff member", f["staff"]),
        ("Recipients", "\n    ".join(recipients) or f["recipients"]),
    ]
    if r.kind == "request":
        pairs = request_pairs(r)
    elif r.kind == "refused":
        # Nothing was shared: only what was tried and why it was refused.
        pairs += [("Reply", f["reply"]), ("Reference", str(r.data.get("reference", "")))]
    else:
        pairs += [
            ("Answers request", f"entry {r.request}" if r.request else ""),
            ("Subject", f["subject"]),
            ("Message ID", f["message_id"]),
            ("Attachments", f["attachments"] or "none"),
            ("Size", f"{r.entry.size:,} bytes"),
            ("SHA-256 of message", f["sha256"]),
            ("Nature of information", f["nature"]),
            ("Consent", f["consent"]),
            ("Reason", f["reason"]),
            (
                "Details",
                f"inherited from entry {f['inherited_from']} (a reply in its conversation)"
                if f["inherited_from"]
                else "",
            ),
            ("Person informed", informed_words(r)),
            ("Family reference", f["family"]),
            ("Safeguarding", f["safeguarding"]),
            ("Third-party", third_party_words(r)),
            ("Retention hold", hold_words(r)),
            ("Record", "complete" if r.complete else f"incomplete ({f['missing']} missing)"),
            ("Status", f["status"]),
            (
                "Approved",
                f"by {f['approved_by']} at {f['approved_at']} (local time)"
                + (f"; note: {f['approval_note']}" if f["approval_note"] else "")
                if f["approved_by"]
                else "",
            ),
            ("Reply", f["reply"]),
        ]
    lines += [f"  {k + ':':<23}{v}" for k, v in pairs if v]
    for c in r.concerns:
        lines.append(f"  Concern ({local_time(c['at'])}, {c['by']}): {c['text']}")
    if r.followups:
        lines += ["Follow-ups:"] + ["  " + followup_line(e) for e in r.followups]
    return "\n".join(lines) + "\n"


def third_party_words(r: Record) -> str:
    """What a client copy withholds of this record ('' when nothing)."""
    if r.third_party:
        return "yes: withheld from a client copy"
    if r.third_party_fields:
        return "in part: " + ", ".join(r.third_party_fields) + " withheld from a client copy"
    return ""


def request_pairs(r: Record) -> list[tuple[str, str]]:
    """A request's details, as ``register show`` and the family report word them."""
    d = r.data
    return [
        ("Recorded", local_time(r.at, seconds=True) + " (local time)"),
        ("Requester", requester(r)),
        ("How it arrived", VIA_WORDS.get(str(d.get("via", "")), str(d.get("via", "")))),
        ("Date received", str(d.get("received", ""))),
        ("Information requested", r.nature),
        ("Family reference", r.family),
        ("Taken by", r.staff),
        ("Third-party", third_party_words(r)),
        ("Answered by", ", ".join(f"entry {n}" for n in r.answers) or "none yet"),
    ]


def family_hold_text(r: Record) -> str:
    """A family hold: the family, category, reason, who, review date, its release."""
    d = r.data
    lines = [f"Entry {r.seq}: family retention hold"]
    pairs = [
        ("When", local_time(r.at, seconds=True) + " (local time)"),
        ("Family reference", str(d.get("family", PURGED if r.purged else ""))),
        ("Category", str(d.get("category", ""))),
        ("Reason", str(d.get("reason", ""))),
        ("Set by", str(d.get("actor", ""))),
        ("Review on", str(d.get("review_on", ""))),
        ("Status", r.status),
    ]
    lines += [f"  {k + ':':<23}{v}" for k, v in pairs if v]
    if r.followups:
        lines += ["Follow-ups:"] + ["  " + followup_line(e) for e in r.followups]
    return "\n".join(lines) + "\n"


def report_text(family: str, records: Sequence[Record], generated: float) -> str:
    """What was shared about one family, and the requests received about it, for managers
    (a client's own copy withholds third-party information: :mod:`.client_copy`)."""
    lines = [
        f"Disclosures about family {family}",
        f"Generated {local_time(generated)} (local time); {len(records)} record(s).",
        REQUEST_CLAUSE,
        "",
    ]
    for r in records:
        f = flat(r)
        if r.kind == "request":
            lines += [*request_lines(r), ""]
            continue
        lines += [
            f"{f['time'][:16]}  entry {r.seq}: {'sent' if r.kind == 'accepted' else 'refused'}",
            f"  To:       {f['recipients']}"
            + (f" ({f['organisations']})" if f["organisations"] else ""),
            f"  What:     {f['subject']}" + (f" (nature: {f['nature']})" if f["nature"] else ""),
        ]
        if r.request:
            lines.append(f"  Answers:  request {r.request}")
        if f["attachments"]:
            lines.append(f"  Files:    {f['attachments']}")
        lines += [
            f"  Consent:  {f['consent']}" + (f" (reason: {f['reason']})" if f["reason"] else ""),
            f"  Informed: {f['informed']}"
            + (f" on {f['informed_on']}" if f["informed_on"] else ""),
            "",
        ]
    return "\n".join(lines)


def request_lines(r: Record) -> list[str]:
    """One request in the managers' family report."""
    d = r.data
    how = VIA_WORDS.get(str(d.get("via", "")), str(d.get("via", "")))
    return [
        f"{local_time(r.at)}  entry {r.seq}: request received",
        f"  From:     {requester(r)}, {how}, received {d.get('received', '')}",
        f"  Wanted:   {r.nature}",
        f"  Taken by: {r.staff}",
        "  Answered: " + (", ".join(f"entry {n}" for n in r.answers) or "not yet"),
    ]
