"""One record in words, as ``register show`` and the console's entry page print it
(with its follow-ups), and what was shared about a family, for managers (the client's
own copy is :mod:`.client_copy`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.register.duty_words import hold_words, informed_words
from gateway.register.export import flat
from gateway.register.formats import (
    PURGED,
    kind_words,
    local_time,
    recipient_words,
    requester,
    third_party_words,
    yes_no,
)
from gateway.register.record import CONSENT_WORDS, Entry, Record
from gateway.register.requests import CLAUSE as REQUEST_CLAUSE
from gateway.register.requests import VIA_WORDS
from gateway.register.retention import FAMILY_HOLD


def show_text(r: Record) -> str:
    if r.kind == FAMILY_HOLD:
        return family_hold_text(r)
    lines = [f"Entry {r.seq}: {kind_words(r)}"]
    if r.kind in ("admin", "purge"):
        lines += [f"  {k}: {v}" for k, v in r.data.items()]
        return "\n".join(lines) + "\n"
    f = flat(r)
    recipients = [recipient_words(x) for x in r.recipients]
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
            f"{f['time'][:16]}  entry {r.seq}: {r.outcome}",
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
