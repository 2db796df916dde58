"""Which records a list, a report or an export asks for (:class:`Filters`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.register.record import ROOT_KINDS, Record
from gateway.register.retention import FAMILY_HOLD, local_day


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
