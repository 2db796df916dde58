"""The fold: every entry of the register folded into its original, giving the records
(:class:`~gateway.register.record.Record`) people read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from gateway.register.record import NEVER_SENT, Entry, Record
from gateway.register.retention import FAMILY_HOLD, TAGGED, RetentionHold, default_review_on

DAY = 86400.0


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
        sent = r.kind == "accepted" and r.approval not in NEVER_SENT
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
