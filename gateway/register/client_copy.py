"""A family's report as a client may be given it: third-party information withheld.

Policy, "Client files": clients may view their files, but not information obtained from
a third party. A record flagged ``third_party`` (the ``[third-party]`` tag at send time, or
``register annotate N --third-party yes`` later) or ``safeguarding`` is replaced, whole,
by :data:`WITHHELD` and counted: its subject, reason, recipients and attachment names never
appear. In the records that remain, people's names and addresses are replaced by their
organisation (the contact's, else the address's domain), and a request's requester by the
organisation of its contact. The full report (:func:`gateway.register.formats.report_text`)
stays for managers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.register.formats import flat, local_time
from gateway.register.requests import VIA_WORDS
from gateway.register.view import Record

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
    """Information about or from another person: never in a client's copy."""
    return r.third_party or r.safeguarding


def organisation_of(recipient: dict[str, Any]) -> str:
    """What a client sees of a recipient: the organisation, else the address's domain."""
    found = str(recipient.get("organisation") or "").strip()
    if found:
        return found
    return str(recipient.get("address", "")).rpartition("@")[2].lower() or "(unknown)"


def client_copy_text(family: str, records: Sequence[Record], generated: float) -> str:
    count = sum(1 for r in records if withheld(r))
    lines = [
        f"Information held about family {family}: client copy",
        f"Generated {local_time(generated)} (local time); {len(records)} record(s), "
        f"{count} {'entry' if count == 1 else 'entries'} withheld "
        "(information about another person).",
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


def _request(r: Record) -> list[str]:
    d = r.data
    how = VIA_WORDS.get(str(d.get("via", "")), "")
    who = str(d.get("organisation") or "") if d.get("contact_id") else ""
    return [
        f"{local_time(r.at)}  entry {r.seq}: request received",
        f"  From:     {who or NAME_WITHHELD}, {how}, received {d.get('received', '')}",
        f"  Wanted:   {r.nature}",
        "  Answered: " + (", ".join(f"entry {n}" for n in r.answers) or "not yet"),
    ]


def _message(r: Record) -> list[str]:
    f = flat(r)
    organisations = sorted({organisation_of(x) for x in r.recipients})
    names = [str(a.get("name", "")) for a in r.data.get("attachments", [])]
    lines = [
        f"{f['time'][:16]}  entry {r.seq}: "
        + ("sent" if r.kind == "accepted" else "refused (not sent)"),
        f"  To:       {', '.join(organisations) or f['recipients']}",
        f"  What:     {f['subject']}" + (f" (nature: {f['nature']})" if f["nature"] else ""),
    ]
    if r.request:
        lines.append(f"  Answers:  request {r.request}")
    if names:
        lines.append(f"  Files:    {'; '.join(names)}")
    if r.kind == "accepted":
        lines += [
            f"  Consent:  {f['consent']}" + (f" (reason: {f['reason']})" if f["reason"] else ""),
            f"  Informed: {f['informed']}"
            + (f" on {f['informed_on']}" if f["informed_on"] else ""),
        ]
    return lines
