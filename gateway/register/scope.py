"""Which records a console viewer may read (``[web] manager_scope``), as a value the
register's index can also answer in SQL (:mod:`.index_read`).

A manager under ``"reports"`` reads the records of the staff who name them as line
manager and the records they acted on themselves (a follow-up, an approval, an admin
action of theirs); ``reports`` None reads every record. Who is whose report is worked
out in :func:`gateway.web.register_scope.scope_for`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.register.record import Record


@dataclass(frozen=True)
class RegisterScope:
    login: str
    # The logins whose records the viewer reads; None: every record.
    reports: frozenset[str] | None

    @property
    def everything(self) -> bool:
        return self.reports is None

    def shows(self, r: Record) -> bool:
        if self.reports is None:
            return True
        if r.staff.lower() in self.reports:
            return True
        return any(
            str(e.data.get("actor", "")).lower() == self.login for e in (r.entry, *r.followups)
        )

    def only(self, records: Iterable[Record]) -> list[Record]:
        return [r for r in records if self.shows(r)]
