"""A register record: an original entry seen through all its follow-ups.

An original entry (a message accepted or refused, an admin action, a purge) is never
changed; follow-ups (delivery outcomes, annotations) are later entries pointing at it.
A :class:`Record` is the original seen through all its follow-ups: the consent status
as last completed, whether the person was informed, the holds, the delivery status.
:mod:`gateway.register.fold` builds records from entries; :mod:`gateway.register.criteria`
chooses among them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.register.retention import RetentionHold

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
# Consent refused or not sought: a reason is owed, and the summary counts the disclosure
# as made without consent.
REFUSED_OR_NOT_SOUGHT = ("refused", "not-sought")
# Consent not obtained (refused, not sought, or never recorded). Policy, "Inter-agency
# working": whether the person was informed, for every such disclosure; a duty due
# ``[register] inform_within_days`` after sending.
NOT_OBTAINED = (*REFUSED_OR_NOT_SOUGHT, "not-recorded")
# Approval outcomes after which a held message never leaves.
NEVER_SENT = ("refused", "withdrawn", "expired")
# A message held for approval, or never approved, was not sent: a report must not say it was.
NOT_SENT_WORDS = {
    "held": "held for a line manager's approval (not sent)",
    "refused": "refused by a line manager (not sent)",
    "withdrawn": "withdrawn by the sender (not sent)",
    "expired": "not approved in time (not sent)",
}


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
        if self.approval in NEVER_SENT:
            return []  # never sent: nothing was disclosed, so nothing is missing
        out = []
        if self.consent == "not-recorded":
            out.append("consent")
        if self.consent in REFUSED_OR_NOT_SOUGHT and not self.reason:
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
            and self.consent in NOT_OBTAINED
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
