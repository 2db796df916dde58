"""The managers' daily reminder of register duties: "person informed" overdue, retention
holds due for review.

Policy, "Inter-agency working": for a disclosure made without consent the register must
say whether the person was later informed; the answer is due ``[register]
inform_within_days`` after sending, and until it is given the sender's line managers (an
admin, for a sender without one) are reminded daily. Policy, "Storage of information":
a retention hold past its review date is listed the same way (a family hold, which names
no sender, to the admins). Each list names entry numbers, staff and organisations only,
never a subject or body; the managers read the rest in the console or with `register
show N`.

Once a day, at the day's first run of the job (what falls due later that day is in the
next day's): the reminder is itself recorded in the register (a notice, like every mail
the gateway sends its staff) with the day it is for, so a restart sends no second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import structlog

from gateway.directory.staff import StaffDirectory, StaffMember
from gateway.holds.notify import Notifier
from gateway.register.formats import local_time
from gateway.register.ledger import Register
from gateway.register.record import Record
from gateway.register.retention import local_day

log = structlog.get_logger("gateway.holds")

NOTICE = "duties"  # the notice kind of the reminder, as its register entry records it


@dataclass
class Due:
    informed: list[Record] = field(default_factory=list)
    review: list[Record] = field(default_factory=list)


class DutyReminder:
    def __init__(
        self,
        register: Register,
        notify: Notifier,
        staff: StaffDirectory,
        *,
        console_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.register = register
        self.notify = notify
        self.staff = staff
        self.console_url = console_url
        self.clock = clock
        self._done = ""  # the day already seen to (the register need not be read again)

    def remind(self, now: float | None = None) -> int:
        """Mail each manager their overdue duties, once a (local) day; returns how many
        reminders were queued."""
        now = self.clock() if now is None else now
        today = local_day(now).isoformat()
        if today == self._done:
            return 0  # the job runs every few minutes: the register is read once a day
        records = self.register.records()
        self._done = today
        if any(
            r.data.get("notice") == NOTICE and r.data.get("notice_for") == today for r in records
        ):
            return 0
        per = self._per_manager(
            [r for r in records if r.inform_overdue(now)],
            [r for r in records if r.own_hold is not None and r.own_hold.review_due(today)],
        )
        if not per:
            return 0
        with self.register.store.transaction() as conn:
            for login, due in per.items():
                self.notify.duties(conn, login, _subject(due), self._lines(due), today)
        log.info("register_duty_reminders", reminders=len(per))
        return len(per)

    def _per_manager(self, informed: Iterable[Record], review: Iterable[Record]) -> dict[str, Due]:
        members = {m.login: m for m in self.staff.list()}
        admins = [m.login for m in members.values() if m.role == "admin"]
        per: dict[str, Due] = {}
        for what, records in (("informed", informed), ("review", review)):
            for r in records:
                for login in _managers(members.get(r.staff.lower()), members) or admins:
                    getattr(per.setdefault(login, Due()), what).append(r)
        return per

    def _lines(self, due: Due) -> list[str]:
        lines: list[str] = []
        if due.informed:
            lines += [
                f"{len(due.informed)} disclosure(s) made without consent: whether the person "
                'was informed is overdue (policy, "Inter-agency working"):',
                "",
                *(
                    f"  entry {r.seq}  from {r.staff}, to {_where(r)}, sent "
                    f"{local_time(r.approved_at or r.at)}, due {local_time(r.inform_due)[:10]}"
                    for r in due.informed
                ),
                "",
                "Record the answer: `c4f-gateway register annotate N --informed yes "
                "--informed-on DATE`, or `--informed no --informed-reason TEXT`.",
            ]
        if due.review:
            lines += [
                *([""] if lines else []),
                f'{len(due.review)} retention hold(s) are due for review (policy, "Storage '
                'of information"):',
                "",
                *(f"  entry {r.seq}  {_hold(r)}" for r in due.review),
                "",
                "Renew a hold with a new review date, or release it with its reason "
                "(`register annotate N`, `register hold-family` / `release-family`).",
            ]
        where = (
            f"{self.console_url.rstrip('/')}/register" if self.console_url else "the review console"
        )
        return [*lines, "", f"The entries are in {where} (Register)."]


def _managers(member: StaffMember | None, members: dict[str, StaffMember]) -> list[str]:
    """The sender's line managers who hold the manager or admin role."""
    if member is None:
        return []
    return [m for m in member.managers if m in members and members[m].role in ("manager", "admin")]


def _where(r: Record) -> str:
    orgs: Sequence[str] = r.organisations or sorted(
        {str(x.get("address", "")).rpartition("@")[2] for x in r.recipients}
    )
    return ", ".join(orgs) or "(no recipient)"


def _hold(r: Record) -> str:
    h = r.own_hold
    assert h is not None
    who = f"from {r.staff}, " if r.staff else "family hold, "
    return f"{who}{h.category}, set by {h.by or 'the sender'}, review on {h.review_on}"


def _subject(due: Due) -> str:
    parts = []
    if due.informed:
        parts.append(f'{len(due.informed)} "person informed" overdue')
    if due.review:
        parts.append(f"{len(due.review)} retention hold(s) to review")
    return "Reminder: register duties: " + ", ".join(parts)
