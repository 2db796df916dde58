"""Which register records a console viewer may read (``[web] manager_scope``).

Policy, "Disclosing information": staff make *their line manager* aware of concerns about
a disclosure, and held messages go only to the sender's line managers
(:mod:`gateway.holds.service`). With ``manager_scope = "reports"`` (the default) the
register follows the same line: a manager reads the records of the staff who name them
as line manager (``c4f-gateway staff edit LOGIN --manager M``) and the records they acted
on themselves (a follow-up, an approval, an admin action of theirs). Admins, managers
under ``"all"`` and the command line (which runs with the keys) read every record.

A record outside the scope is treated as missing everywhere: the list, entry pages,
follow-up forms, the family report, the CSV export and every count: the pages read
through :func:`readable_records` and :func:`readable_record`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.requests import Request

from gateway.directory.staff import StaffMember
from gateway.register.criteria import Filters
from gateway.register.record import Record
from gateway.register.scope import RegisterScope
from gateway.settings.web import ManagerScope
from gateway.web.auth import Viewer, console_of
from gateway.web.console import Console

__all__ = [
    "RegisterScope",
    "readable_record",
    "readable_records",
    "scope_for",
    "viewer_scope",
]


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


def viewer_scope(console: Console, v: Viewer) -> RegisterScope:
    """Blocking (reads the staff table): call in a worker thread, as the readers below do."""
    return scope_for(v.member, console.staff.list(), console.web.manager_scope)


async def readable_records(request: Request, v: Viewer, filters: Filters) -> list[Record]:
    """The records ``filters`` match that ``v`` may read, in register order."""
    console = console_of(request)

    def read() -> list[Record]:
        return viewer_scope(console, v).only(console.register.records(filters))

    return await asyncio.to_thread(read)


async def readable_record(request: Request, v: Viewer, seq: int) -> Record | None:
    """The record holding entry ``seq`` (an original or a follow-up), if ``v`` may read it."""
    console = console_of(request)

    def read() -> Record | None:
        found = console.register.record(seq)
        return found if found is not None and viewer_scope(console, v).shows(found) else None

    return await asyncio.to_thread(read)
