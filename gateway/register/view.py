"""The register as people read it: entries folded with their follow-ups into records.

An original entry (a message accepted or refused, an admin action, a purge) is never
changed; follow-ups (delivery outcomes, annotations) are later entries pointing at it.
A :class:`Record` is the original seen through all its follow-ups: the consent status
as last completed, whether the person was informed, the holds, the delivery status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CONSENT_VALUES = ("obtained", "refused", "not-sought", "not-recorded")
CONSENT_WORDS = {
    "obtained": "obtained",
    "refused": "refused",
    "not-sought": "not sought",
    "not-recorded": "not recorded",
}
ROOT_KINDS = ("accepted", "refused", "request")  # request: received (gateway.register.requests)


@dataclass(frozen=True)
class Entry:
    """One decrypted row. ``data`` is empty once the entry has been purged."""

    seq: int
    at: float
    kind: str
    ref: int
    queue_id: str
    size: int
    sha256: str
    public: dict[str, Any]
    data: dict[str, Any]
    purged: bool
    unreadable: bool = False  # the data fails its integrity check (shown, never guessed)


@dataclass
class Record:
    entry: Entry
    followups: list[Entry] = field(default_factory=list)
    consent: str = "not-recorded"
    reason: str = ""
    informed: str = ""  # "yes", "no" or "" (not yet recorded)
    informed_on: str = ""
    family: str = ""
    nature: str = ""
    safeguarding: bool = False
    # About another person (the [third-party] tag or a manager's annotation): withheld
    # from a client's copy of the family report (gateway.register.client_copy).
    third_party: bool = False
    request: int = 0  # the request (a ``request`` entry) this message answers
    answers: list[int] = field(default_factory=list)  # a request: the entries naming it
    inherited_from: int = 0  # the entry whose disclosure details a reply took on
    manual_hold: bool = False
    # Kept beyond the three-year retention period: safeguarding, injury, a manual hold or
    # its family's (policy, "Storage of information"). Not the same as held for approval.
    retention_hold: bool = False
    external: bool = True
    concerns: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""
    delivery: dict[str, str] = field(default_factory=dict)  # address -> delivered | bounced
    deferred: bool = False
    # Line-manager approval: "" (never held), then held, approved, refused, withdrawn, expired.
    approval: str = ""
    approval_steps: list[dict[str, Any]] = field(default_factory=list)
    approved_by: str = ""
    approved_at: float = 0.0
    approval_note: str = ""

    @property
    def seq(self) -> int:
        return self.entry.seq

    @property
    def at(self) -> float:
        return self.entry.at

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def purged(self) -> bool:
        return self.entry.purged

    @property
    def data(self) -> dict[str, Any]:
        return self.entry.data

    @property
    def staff(self) -> str:
        return str(self.data.get("staff", ""))

    @property
    def notice(self) -> bool:
        """The gateway's own mail to staff (a held notice, a bounce, a reminder): recorded,
        but no disclosure, so lists, reports and exports leave it out unless asked."""
        d = self.data
        return (
            self.kind == "accepted"
            and not self.purged
            and not d.get("staff")
            and (any(k in d for k in ("notice", "notice_for", "bounce_for")))
        )

    @property
    def recipients(self) -> list[dict[str, Any]]:
        return list(self.data.get("recipients", []))

    @property
    def organisations(self) -> list[str]:
        orgs = [str(r.get("organisation") or "") for r in self.recipients]
        return sorted({o for o in orgs if o})

    @property
    def missing(self) -> list[str]:
        """What the policy asks to be recorded and is not (accepted external mail only)."""
        if self.kind != "accepted" or self.purged or not self.external:
            return []
        if self.approval in ("refused", "withdrawn", "expired"):
            return []  # never sent: nothing was disclosed, so nothing is missing
        out = []
        if self.consent == "not-recorded":
            out.append("consent")
        if self.consent in ("refused", "not-sought") and not self.reason:
            out.append("reason")
        return out

    @property
    def complete(self) -> bool:
        return not self.missing


def build_records(entries: Iterable[Entry]) -> list[Record]:
    """Fold every entry into its original; returns the originals in register order."""
    records: dict[int, Record] = {}
    for e in sorted(entries, key=lambda x: x.seq):
        root = records.get(e.ref) if e.ref else None
        if root is None:
            records[e.seq] = _start(e)
        else:
            root.followups.append(e)
            _apply(root, e)
    held_families = {
        r.family.lower() for r in records.values() if r.family and (r.safeguarding or r.manual_hold)
    }
    for r in records.values():
        r.retention_hold = r.safeguarding or r.manual_hold or r.family.lower() in held_families
        if r.kind == "accepted" and not r.status:
            r.status = "queued"
        asked = records.get(r.request) if r.request and r.kind == "accepted" else None
        if asked is not None and asked.kind == "request":
            asked.answers.append(r.seq)
    for r in records.values():
        if r.kind == "request":
            r.status = "answered" if r.answers else "not answered yet"
    return list(records.values())


def _start(e: Entry) -> Record:
    d = e.data
    r = Record(entry=e)
    r.consent = str(d.get("consent") or "not-recorded")
    r.reason = str(d.get("reason") or "")
    r.informed = str(d.get("informed") or "")
    r.family = str(d.get("family") or "")
    r.nature = str(d.get("nature") or "")
    r.safeguarding = bool(d.get("safeguarding", False))
    r.inherited_from = int(d.get("inherited_from") or 0)
    r.external = bool(d.get("external", True))
    r.third_party = bool(d.get("third_party", False))
    r.request = int(d.get("request") or 0)
    if e.kind == "request":
        r.consent = ""  # a request discloses nothing: no consent status is asked of it
    if e.kind == "refused":
        r.status = "refused"
    return r


def _apply(r: Record, e: Entry) -> None:
    d = e.data
    if e.kind == "outcome":
        _outcome(r, d)
        return
    if e.kind == "hold":
        _hold(r, e)
        return
    if e.kind != "annotation":
        return
    changes = d.get("changes", {})
    for key in ("consent", "reason", "informed", "informed_on", "family", "nature"):
        if key in changes:
            setattr(r, key, str(changes[key]))
    if "safeguarding" in changes:
        r.safeguarding = bool(changes["safeguarding"])
    if "third_party" in changes:
        r.third_party = bool(changes["third_party"])
    if "hold" in changes:
        r.manual_hold = bool(changes["hold"])
    if changes.get("concern"):
        r.concerns.append({"at": e.at, "by": d.get("actor", ""), "text": changes["concern"]})


HOLD_STATUS = {
    "held": "held for approval",
    "approved": "approved, queued",
    "refused": "refused by a manager",
    "withdrawn": "withdrawn by the sender",
    "expired": "expired unapproved",
    "completed": "completed by the sender, queued",
}


def _hold(r: Record, e: Entry) -> None:
    d = e.data
    action = str(d.get("action", ""))
    r.approval = action
    r.approval_steps.append(
        {
            "at": e.at,
            "action": action,
            "by": str(d.get("actor", "")),
            "note": str(d.get("note", "")),
            "reasons": list(d.get("reasons", [])),
        }
    )
    r.status = HOLD_STATUS.get(action, action)
    if action == "completed":
        # The sender gave the missing details; no hold rule applied any more.
        changes = d.get("changes") or {}
        for key in ("consent", "reason", "family", "nature"):
            if changes.get(key):
                setattr(r, key, str(changes[key]))
    if action == "approved":
        # The approver completes the record: the consent status they recorded, and their
        # note as the reason for sharing when the consent was not obtained.
        r.approved_by, r.approved_at = str(d.get("actor", "")), e.at
        r.approval_note = str(d.get("note", ""))
        if d.get("consent"):
            r.consent = str(d["consent"])
        if r.approval_note and r.consent != "obtained" and not r.reason:
            r.reason = r.approval_note


def _outcome(r: Record, d: dict[str, Any]) -> None:
    status = str(d.get("status", ""))
    if status == "deferred":
        r.deferred = True
        r.status = "deferred (will retry)"
        return
    for address in d.get("recipients", []):
        r.delivery[str(address)] = status
    everyone = {str(x.get("address", "")) for x in r.recipients}
    states = set(r.delivery.values())
    if everyone - set(r.delivery):
        r.status = "partly delivered" if "delivered" in states else "partly bounced"
    elif states == {"delivered"}:
        r.status = "delivered after delay" if r.deferred else "delivered"
    elif states == {"bounced"}:
        r.status = "bounced"
    else:
        r.status = "partly bounced"


@dataclass(frozen=True)
class Filters:
    since: float | None = None
    until: float | None = None
    staff: str = ""
    recipient: str = ""
    organisation: str = ""
    family: str = ""
    consent: str = ""
    incomplete: bool = False
    refused: bool = False
    retention_hold: bool = False  # kept beyond the three-year retention period
    held_for_approval: bool = False  # waiting for a line manager now
    include_notices: bool = False  # the gateway's own notices to staff (Record.notice)
    kinds: Sequence[str] = ROOT_KINDS

    def match(self, r: Record) -> bool:
        checks = (
            r.kind in self.kinds,
            self.since is None or r.at >= self.since,
            self.until is None or r.at < self.until,
            not self.staff or r.staff.lower() == self.staff.lower(),
            not self.recipient
            or any(
                self.recipient.lower() in str(x.get("address", "")).lower() for x in r.recipients
            ),
            not self.organisation
            or any(self.organisation.lower() in o.lower() for o in r.organisations),
            not self.family or r.family.lower() == self.family.lower(),
            not self.consent or r.consent == self.consent,
            not self.incomplete or not r.complete,
            not self.refused or r.kind == "refused",
            not self.retention_hold or r.retention_hold,
            not self.held_for_approval or r.approval == "held",
            self.include_notices or not r.notice,
        )
        return all(checks)
