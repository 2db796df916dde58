"""A family's report as a client may be given it: third-party information withheld.

Policy, "Client files": clients may view their files, but not information obtained from
a third party. A record flagged ``third_party`` (the ``[third-party]`` tag at send time, or
``register annotate N --third-party yes`` later), ``safeguarding`` or ``child_protection``
(the ``[child-protection]`` tag) is replaced, whole,
by :data:`WITHHELD` and counted: its subject, reason, recipients and attachment names never
appear. A manager may instead mark only some parts of a record (``--third-party-field
subject`` ...): those parts alone are replaced. In the records that remain, people's names
and addresses are replaced by their organisation (the contact's, else the address's
domain), and a request's requester by the organisation of its contact. The full report
(:func:`gateway.register.record_text.report_text`) stays for managers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.register.export import flat
from gateway.register.formats import local_time
from gateway.register.record import Record
from gateway.register.requests import VIA_WORDS

WITHHELD = "withheld: information about another person"
# The clause the client copy serves, quoted word for word from the policy.
CLAUSE = (
    'Policy, "Client files": "All clients have the right to view their files. However, to '
    "protect the safety and confidentiality of others, no clients will have access to any "
    "information from their files that has been obtained from a third party, such as their "
    'former partner, their children or any other agency they are known to."'
)
NAME_WITHHELD = "a person or agency (name withheld)"


def withheld(r: Record) -> bool:
    """Information about or from another person, or a safeguarding or child-protection
    matter (the person told may be the one the concern is about): never in a client's copy."""
    return r.third_party or r.safeguarding or r.child_protection


def organisation_of(recipient: dict[str, Any]) -> str:
    """What a client sees of a recipient: the organisation, else the address's domain."""
    found = str(recipient.get("organisation") or "").strip()
    if found:
        return found
    return str(recipient.get("address", "")).rpartition("@")[2].lower() or "(unknown)"


def client_copy_text(family: str, records: Sequence[Record], generated: float) -> str:
    count = sum(1 for r in records if withheld(r))
    partly = sum(1 for r in records if not withheld(r) and r.third_party_fields)
    lines = [
        f"Information held about family {family}: client copy",
        f"Generated {local_time(generated)} (local time); {len(records)} record(s), "
        f"{_entries(count)} withheld (information about another person)"
        + (
            f"; parts of {partly} other {'entry' if partly == 1 else 'entries'} withheld."
            if partly
            else "."
        ),
        CLAUSE,
        "",
    ]
    for r in records:
        if withheld(r):
            lines += [f"{local_time(r.at)}  entry {r.seq}: {WITHHELD}", ""]
        elif r.kind == "request":
            lines += [*_request(r), ""]
        else:
            lines += [*_message(r), ""]
    return "\n".join(lines)


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


def _part(r: Record, name: str, text: str) -> str:
    """``text``, or :data:`WITHHELD` when a manager marked this part as third-party."""
    return WITHHELD if name in r.third_party_fields else text


def _request(r: Record) -> list[str]:
    d = r.data
    how = VIA_WORDS.get(str(d.get("via", "")), "")
    who = str(d.get("organisation") or "") if d.get("contact_id") else ""
    return [
        f"{local_time(r.at)}  entry {r.seq}: request received",
        f"  From:     {_part(r, 'requester', who or NAME_WITHHELD)}, {how}, "
        f"received {d.get('received', '')}",
        f"  Wanted:   {_part(r, 'nature', r.nature)}",
        "  Answered: " + (", ".join(f"entry {n}" for n in r.answers) or "not yet"),
    ]


def _message(r: Record) -> list[str]:
    f = flat(r)
    organisations = sorted({organisation_of(x) for x in r.recipients})
    names = [str(a.get("name", "")) for a in r.data.get("attachments", [])]
    nature = _part(r, "nature", f["nature"])
    reason = _part(r, "reason", f["reason"])
    lines = [
        f"{f['time'][:16]}  entry {r.seq}: {r.outcome}",
        f"  To:       {_part(r, 'recipients', ', '.join(organisations) or f['recipients'])}",
        f"  What:     {_part(r, 'subject', f['subject'])}"
        + (f" (nature: {nature})" if nature else ""),
    ]
    if r.request:
        lines.append(f"  Answers:  request {r.request}")
    if names:
        lines.append(f"  Files:    {_part(r, 'attachments', '; '.join(names))}")
    if r.kind == "accepted":
        lines += [
            f"  Consent:  {f['consent']}" + (f" (reason: {reason})" if reason else ""),
            f"  Informed: {f['informed']}"
            + (f" on {f['informed_on']}" if f["informed_on"] else ""),
        ]
    return lines
