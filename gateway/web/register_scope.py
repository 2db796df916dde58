"""Which register records a console viewer may read (``[web] manager_scope``).

Policy, "Disclosing information": staff make *their line manager* aware of concerns about
a disclosure, and held messages go only to the sender's line managers
(:mod:`gateway.holds.service`). With ``manager_scope = "reports"`` (the default) the
register follows the same line: a manager reads the records of the staff who name them
as line manager (``c4f-gateway staff edit LOGIN --manager M``) and the records they acted
on themselves (a follow-up, an approval, an admin action of theirs). Admins, managers
under ``"all"`` and the command line (which runs with the keys) read every record.

A record outside the scope is treated as missing everywhere: the list, entry pages,
follow-up forms, the family report, the CSV export and every count.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.directory.staff import StaffMember
from gateway.register.scope import RegisterScope
from gateway.settings.web import ManagerScope

__all__ = ["RegisterScope", "scope_for"]


def scope_for(
    viewer: StaffMember, members: Iterable[StaffMember], setting: ManagerScope
) -> RegisterScope:
    """The scope of ``viewer`` (a manager or admin), given every staff account."""
    login = viewer.login.lower()
    if viewer.role == "admin" or setting == "all":
        return RegisterScope(login, None)
    reports = frozenset(
        m.login.lower() for m in members if login in (x.lower() for x in m.managers)
    )
    return RegisterScope(login, reports)
