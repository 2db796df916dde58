"""The register's duties on the console's front page (the register list), for managers.

Policy, "Inter-agency working": disclosures made without consent whose "person informed"
is overdue; "Storage of information": retention holds due for review. Counted within the
viewer's scope (:mod:`.register_scope`), as the daily reminder lists them
(:mod:`gateway.holds.duties`); each count comes with a button that filters the list to
those records.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.register import index_duties
from gateway.register.ledger import Register
from gateway.register.retention import local_day
from gateway.web.register_scope import RegisterScope


@dataclass(frozen=True)
class DutyCounts:
    informed: int  # "person informed" overdue and not answered
    review: int  # retention holds (a record's own, or a family hold) due for review


def duty_counts(register: Register, scope: RegisterScope, now: float) -> DutyCounts:
    """Blocking: call in a worker thread. Two counts read from the register's index."""
    today = local_day(now).isoformat()
    return DutyCounts(
        *index_duties.duty_counts(register, scope, now, today, register.inform_within_days)
    )
