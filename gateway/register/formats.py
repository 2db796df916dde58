"""The register for people: the words and times every view shares, and the aligned
tables of ``register list``.

Written for a line manager reading a disclosure log: local time, words rather than
codes. One record as CSV and JSON cells is :mod:`.export`; one record as text
(``register show``) and the managers' family report are :mod:`.record_text`; the
client's own copy is :mod:`.client_copy`. CSV cells that a spreadsheet would run as a
formula are prefixed with an apostrophe: :func:`gateway.spreadsheet.safe_cell`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from gateway.register.record import CONSENT_WORDS, Record
from gateway.register.retention import FAMILY_HOLD

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


def kind_words(r: Record) -> str:
    """What the record is, in words; a message that never left is not called sent."""
    if r.kind == "accepted" and r.outcome != "sent":
        return f"message {r.outcome}"
    return KIND_WORDS.get(r.kind, r.kind)


def recipient_words(x: dict[str, Any]) -> str:
    """A recipient as an entry shows it: the address, then the name and organisation."""
    said = ", ".join(str(v) for v in (x.get("display_name"), x.get("organisation")) if v)
    return str(x.get("address", "")) + (f" ({said})" if said else "")


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


def requester(r: Record) -> str:
    """Who made a request: the agency or person, and the contact it is linked to."""
    d = r.data
    contact = f"contact {d['contact_id']}" if d.get("contact_id") else ""
    linked = ", ".join(str(v) for v in (d.get("organisation"), contact) if v)
    return str(d.get("requester", PURGED if r.purged else "")) + (f" ({linked})" if linked else "")


def third_party_words(r: Record) -> str:
    """What a client copy withholds of this record ('' when nothing)."""
    if r.third_party:
        return "yes: withheld from a client copy"
    if r.third_party_fields:
        return "in part: " + ", ".join(r.third_party_fields) + " withheld from a client copy"
    return ""


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


def refusal_words(reply: str, width: int = 60) -> str:
    """A refusal's reason in a few words, for a list: "550 5.7.1 Fax routes are not
    allowed [ref R-1A2B]" -> "Fax routes are not allowed"."""
    text = re.sub(r"^\d{3}(?: \d\.\d{1,3}\.\d{1,3})? ", "", reply)
    text = re.sub(r" \[ref [^\]]*\]$", "", text)
    return _short(re.split(r"[;:] |\. ", text, maxsplit=1)[0].rstrip("."), width)


def notes(r: Record) -> str:
    out = []
    if r.purged:
        out.append("purged")
    if r.kind == "refused" and r.data.get("reply"):
        out.append("refused: " + refusal_words(str(r.data["reply"])))
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
