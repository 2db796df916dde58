"""The register as people read it: entries folded with their follow-ups into records.

An original entry (a message accepted or refused, an admin action, a purge) is never
changed; follow-ups (delivery outcomes, annotations) are later entries pointing at it.
A :class:`Record` is the original seen through all its follow-ups: the consent status
as last completed, whether the person was informed, the holds, the delivery status.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.register.retention import (
    FAMILY_HOLD,
    TAGGED,
    RetentionHold,
    default_review_on,
    local_day,
)

CONSENT_VALUES = ("obtained", "refused", "not-sought", "not-recorded")
CONSENT_WORDS = {
    "obtained": "obtained",
    "refused": "refused",
    "not-sought": "not sought",
    "not-recorded": "not recorded",
}
# Parts of a record a manager can mark as third-party information one by one, when the
# rest may be shown to the client (``register annotate --third-party-field``).
THIRD_PARTY_FIELDS = ("subject", "reason", "nature", "attachments", "recipients", "requester")
ROOT_KINDS = ("accepted", "refused", "request")  # request: received (gateway.register.requests)
# Policy, "Inter-agency working": whether the person was informed, for every disclosure
# made without their consent; a duty due ``[register] inform_within_days`` after sending.
WITHOUT_CONSENT = ("refused", "not-sought", "not-recorded")
NEVER_SENT = ("refused", "withdrawn", "expired")
# A message held for approval, or never approved, was not sent: a report must not say it was.
NOT_SENT_WORDS = {
    "held": "held for a line manager's approval (not sent)",
    "refused": "refused by a line manager (not sent)",
    "withdrawn": "withdrawn by the sender (not sent)",
    "expired": "not approved in time (not sent)",
}
DAY = 86400.0


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
    informed_reason: str = ""  # why the person was not informed (with informed "no")
    inform_due: float = 0.0  # when "person informed" is due (0: no such duty)
    family: str = ""
    nature: str = ""
    safeguarding: bool = False
    child_protection: bool = False
    injury: bool = False
    # About another person (the [third-party] tag or a manager's annotation): withheld
    # from a client's copy of the family report (gateway.register.client_copy).
    third_party: bool = False
    third_party_fields: list[str] = field(default_factory=list)  # only these parts, if any
    request: int = 0  # the request (a ``request`` entry) this message answers
    answers: list[int] = field(default_factory=list)  # a request: the entries naming it
    inherited_from: int = 0  # the entry whose disclosure details a reply took on
    # The record's own retention hold (a tag at send time, an annotation; for a family-hold
    # entry, the family's hold while it stands), and the hold that keeps it: its own, a
    # family hold's, or a held record's of the same family (gateway.register.retention).
    own_hold: RetentionHold | None = None
    hold: RetentionHold | None = None
    # Kept beyond the three-year retention period (policy, "Storage of information"):
    # ``hold`` is set. Not the same as held for approval.
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

    @property
    def outcome(self) -> str:
        """What became of a message, for a family report: "sent" only if it left."""
        if self.kind != "accepted":
            return "refused (not sent)"
        return NOT_SENT_WORDS.get(self.approval, "sent")

    @property
    def manual_hold(self) -> bool:
        """The record has a retention hold of its own (which can be released on it)."""
        return self.own_hold is not None

    @property
    def inform_duty(self) -> bool:
        """Sent outside without consent: whether the person was informed must be answered."""
        return (
            self.kind == "accepted"
            and not self.purged
            and self.external
            and not self.notice
            and self.consent in WITHOUT_CONSENT
            and self.approval != "held"
            and self.approval not in NEVER_SENT
        )

    @property
    def inform_answered(self) -> bool:
        """Yes (with its date, the sending date for a tag), or no with a reason."""
        return self.informed == "yes" or (self.informed == "no" and bool(self.informed_reason))

    @property
    def inform_open(self) -> bool:
        return self.inform_duty and not self.inform_answered

    def inform_overdue(self, now: float) -> bool:
        return self.inform_open and 0 < self.inform_due <= now


def build_records(entries: Iterable[Entry], inform_within_days: int = 14) -> list[Record]:
    """Fold every entry into its original; returns the originals in register order."""
    records: dict[int, Record] = {}
    for e in sorted(entries, key=lambda x: x.seq):
        root = records.get(e.ref) if e.ref else None
        if root is None:
            records[e.seq] = _start(e)
        else:
            root.followups.append(e)
            _apply(root, e)
    _holds(records.values())
    for r in records.values():
        if r.kind == "accepted" and not r.status:
            r.status = "queued"
        if r.inform_duty:
            r.inform_due = (r.approved_at or r.at) + inform_within_days * DAY
        sent = r.kind == "accepted" and r.approval not in ("refused", "withdrawn", "expired")
        asked = records.get(r.request) if r.request and sent else None
        if asked is not None and asked.kind == "request":
            asked.answers.append(r.seq)
    for r in records.values():
        if r.kind == "request":
            r.status = "answered" if r.answers else "not answered yet"
    return list(records.values())


def _holds(records: Iterable[Record]) -> None:
    """Which hold keeps each record: its own, its family's standing family hold (the
    newest; an older one is superseded), or the own hold of a record of its family."""
    family_holds: dict[str, Record] = {}
    held_by: dict[str, Record] = {}
    every = list(records)
    for r in every:
        fam = r.family.lower()
        if not fam or r.own_hold is None:
            continue
        if r.kind == FAMILY_HOLD:
            older = family_holds.get(fam)
            if older is not None:
                older.own_hold, older.status = None, f"superseded by entry {r.seq}"
            family_holds[fam] = r
        else:
            held_by.setdefault(fam, r)
    for r in every:
        fam = r.family.lower()
        fh, by = family_holds.get(fam), held_by.get(fam)
        if r.own_hold is not None:
            r.hold = r.own_hold
        elif fh is not None and fh.own_hold is not None:
            r.hold = dataclasses.replace(fh.own_hold, family_hold=fh.seq)
        elif by is not None and by.own_hold is not None:
            r.hold = dataclasses.replace(by.own_hold, via=by.seq)
        r.retention_hold = r.hold is not None


def _start(e: Entry) -> Record:
    d = e.data
    r = Record(entry=e)
    r.consent = str(d.get("consent") or "not-recorded")
    r.reason = str(d.get("reason") or "")
    r.informed = str(d.get("informed") or "")
    r.family = str(d.get("family") or "")
    r.nature = str(d.get("nature") or "")
    r.safeguarding = bool(d.get("safeguarding", False))
    r.child_protection = bool(d.get("child_protection", False))
    r.injury = bool(d.get("injury", False))
    r.informed_reason = str(d.get("informed_reason") or "")
    for flag, category in TAGGED:
        if d.get(flag):
            why = f"tagged [{category}] when sent"
            r.own_hold = RetentionHold(category, why, r.staff, e.at, default_review_on(e.at))
            break
    if e.kind == FAMILY_HOLD and d.get("action") == "hold":
        r.own_hold = _hold_of(d, e.at)
        r.status = "standing"
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
    if e.kind == FAMILY_HOLD and d.get("action") == "release":
        r.own_hold, r.status = None, "released"
        return
    if e.kind != "annotation":
        return
    changes = d.get("changes", {})
    for key in (
        "consent",
        "reason",
        "informed",
        "informed_on",
        "informed_reason",
        "family",
        "nature",
    ):
        if key in changes:
            setattr(r, key, str(changes[key]))
    if "safeguarding" in changes:
        r.safeguarding = bool(changes["safeguarding"])
        if r.safeguarding and r.own_hold is None:
            why, actor = "flagged safeguarding", str(d.get("actor", ""))
            r.own_hold = RetentionHold("safeguarding", why, actor, e.at, default_review_on(e.at))
        elif not r.safeguarding and r.own_hold and r.own_hold.category == "safeguarding":
            r.own_hold = None
    if "third_party" in changes:
        r.third_party = bool(changes["third_party"])
    if "third_party_fields" in changes:
        r.third_party_fields = [str(x) for x in changes["third_party_fields"]]
    if "hold" in changes:
        r.own_hold = _hold_of(changes, e.at, str(d.get("actor", ""))) if changes["hold"] else None
    if changes.get("concern"):
        r.concerns.append({"at": e.at, "by": d.get("actor", ""), "text": changes["concern"]})


def _hold_of(d: dict[str, Any], at: float, actor: str = "") -> RetentionHold:
    """A hold as recorded (``hold_category`` etc. in an annotation, ``category`` etc. in a
    family hold). A hold recorded before holds had categories reads as "other"."""
    return RetentionHold(
        category=str(d.get("hold_category") or d.get("category") or "other"),
        reason=str(d.get("hold_reason") or d.get("reason") or ""),
        by=actor or str(d.get("actor", "")),
        set_at=at,
        review_on=str(d.get("hold_review_on") or d.get("review_on") or default_review_on(at)),
    )


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
    # "Person informed" overdue at ``now`` (Register.records fills in its clock).
    inform_due: bool = False
    # Retention holds (a record's own, or a family hold) due for review by ``now``.
    hold_review_due: bool = False
    now: float | None = None
    kinds: Sequence[str] = ROOT_KINDS

    def match(self, r: Record) -> bool:
        now = time.time() if self.now is None else self.now
        checks = (
            r.kind in self.kinds or (self.hold_review_due and r.kind == FAMILY_HOLD),
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
            not self.inform_due or r.inform_overdue(now),
            not self.hold_review_due
            or (r.own_hold is not None and r.own_hold.review_due(local_day(now).isoformat())),
        )
        return all(checks)
