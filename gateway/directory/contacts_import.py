"""Importing the approved-contact list from CSV: each row planned before anything is
written, then the plan written all rows or none.

``contacts import`` and the console's import read a file (:mod:`.contacts_csv`) and plan
each row (:func:`plan_import`, which the console's preview shows): a row equal to the
contact it names is *unchanged* and writes nothing; a row that differs is an *update*
(refused unless asked for); any other row is an *add*. The import writes the plan in one
transaction, with one audit row and one register entry per contact that changes
(:meth:`gateway.directory.contacts.ContactRepository.add_all`).

A column the file leaves out (all but ``REQUIRED``), or an empty approved_on or
review_due cell, keeps the contact's current value on an update; on an add it takes the
``COLUMNS`` default. Problems name the line, the column and the value: ``line 7,
review_due: '06/12/2026' is not YYYY-MM-DD``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

from gateway.directory.addresses import AddressSyntaxError, normalise
from gateway.directory.contact import (
    BatchError,
    Contact,
    ContactError,
    PublicDomainError,
    checked,
    review_date,
)
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_csv import (
    CSV_COLUMNS,
    CellError,
    CSVImportError,
    csv_rows,
    row_values,
)
from gateway.directory.public_domains import PublicDomains

Action = Literal["add", "update", "unchanged", "problem"]


@dataclass(frozen=True)
class RowPlan:
    """What the import does with one row. ``contact`` is what will be stored."""

    line: int
    action: Action
    address: str
    contact: Contact | None = None
    before: Contact | None = None
    changed: tuple[str, ...] = ()
    problem: str = ""

    @property
    def message(self) -> str:
        sep = "," if re.match(r"[a-z_]+: ", self.problem) else ":"
        return f"line {self.line}{sep} {self.problem}"


@dataclass
class ImportPlan:
    rows: list[RowPlan] = field(default_factory=list)
    header_problem: str = ""

    def of(self, action: Action) -> list[RowPlan]:
        return [r for r in self.rows if r.action == action]

    @property
    def problems(self) -> list[str]:
        head = [self.header_problem] if self.header_problem else []
        return head + [r.message for r in self.of("problem")]

    @property
    def writes(self) -> list[RowPlan]:
        return [r for r in self.rows if r.action in ("add", "update")]


def _accept(address: str) -> str | None:
    return None


def _unreported(done: int, total: int) -> None:
    return None


def import_csv(
    repo: ContactRepository,
    text: str,
    actor: str,
    reject: Callable[[str], str | None] = _accept,
    *,
    update: bool = False,
    progress: Callable[[int, int], None] = _unreported,
) -> ImportPlan:
    """Write the plan all rows or none; the plan returned has the stored contacts.
    ``progress(rows done, rows)``: a row is done once checked if it changes nothing, once
    written if it adds or updates a contact."""
    plan = plan_import(repo, text, reject, update=update, progress=progress)
    if plan.problems:
        raise CSVImportError(plan.problems)
    entries: list[tuple[str, Contact | ContactError]] = [
        (f"line {r.line}", r.contact) for r in plan.writes if r.contact is not None
    ]
    total = len(plan.rows)
    try:
        stored = iter(
            repo.add_all(_counted(entries, total - len(entries), total, progress), actor, "import")
        )
    except BatchError as exc:
        raise CSVImportError(exc.problems) from None
    plan.rows = [
        replace(r, contact=next(stored)) if r.action in ("add", "update") else r for r in plan.rows
    ]
    return plan


def _counted(
    entries: list[tuple[str, Contact | ContactError]],
    done: int,
    total: int,
    progress: Callable[[int, int], None],
) -> Iterator[tuple[str, Contact | ContactError]]:
    """``entries``, reporting each as done once the writer asks for the next."""
    for entry in entries:
        yield entry
        done += 1
        progress(done, total)


def plan_import(
    repo: ContactRepository,
    text: str,
    reject: Callable[[str], str | None] = _accept,
    *,
    update: bool = False,
    progress: Callable[[int, int], None] = _unreported,
) -> ImportPlan:
    """What :func:`import_csv` would do, row by row, writing nothing. ``reject(address)``
    may veto a row (a fax route); a changed row is a problem unless ``update``.
    ``progress(rows done, rows)`` counts the rows that write nothing (unchanged, or a
    problem): :func:`import_csv` counts the others as it writes them."""
    try:
        header, rows = csv_rows(text)
    except CSVImportError as exc:
        return ImportPlan(header_problem=exc.problems[0])
    existing = {c.key: c for c in repo.all()}
    today = repo.today()
    seen: dict[str, int] = {}
    plan = ImportPlan()
    finished = 0
    if rows:
        progress(0, len(rows))
    for line, cells, extra in rows:
        address = cells[header["address"]]
        try:
            if extra:
                raise ContactError(f"{extra} more cell(s) than columns")
            row = _plan_row(line, cells, header, existing, today, update, repo.public_domains)
            assert row.contact is not None
            veto = reject(row.contact.address) if row.contact.kind == "address" else None
            if veto and row.action != "unchanged":
                raise CellError("address", address, f"is {veto}")
            key = row.contact.key
            if key in seen:
                raise CellError("address", address, f"is also on line {seen[key]}")
            seen[key] = line
        except ContactError as exc:
            row = RowPlan(line, "problem", address, problem=str(exc))
        plan.rows.append(row)
        if row.action not in ("add", "update"):
            finished += 1
            progress(finished, len(rows))
    return plan


def _plan_row(
    line: int,
    cells: list[str],
    header: dict[str, int],
    existing: dict[str, Contact],
    today: date,
    update: bool,
    public: PublicDomains,
) -> RowPlan:
    values = row_values(cells, header)
    address = str(values["address"])
    before = _match(existing, values)
    if before is None:
        base = _defaults(today)
        base.update(values)
        base["approved_on"] = base["approved_on"] or today.isoformat()
        if not base["review_due"]:
            base["review_due"] = review_date(date.fromisoformat(base["approved_on"])).isoformat()
        contact = _checked(Contact(id=0, **base), public)
        if contact.key in existing:
            ref = existing[contact.key].ref
            raise CellError("address", address, f"is already approved as {ref}")
        return RowPlan(line, "add", contact.address, contact)
    for name in ("approved_on", "review_due"):  # an empty date keeps the contact's
        if values.get(name) == "":
            del values[name]
    contact = _checked(replace(before, **values), public)
    changed = tuple(c for c in CSV_COLUMNS if getattr(before, c) != getattr(contact, c))
    if not changed:
        return RowPlan(line, "unchanged", contact.address, contact, before)
    if not update:
        raise CellError(
            "address",
            address,
            f"is approved as {before.ref} with another {', '.join(changed)}; "
            "import with --update to change it",
        )
    return RowPlan(line, "update", contact.address, contact, before, changed)


def _defaults(today: date) -> dict[str, Any]:
    return {
        "kind": "address",
        "display_name": "",
        "role": "",
        "approved_on": today.isoformat(),
        "review_due": "",
        "notes": "",
        "unusual": False,
        "not_fax_by": "",
        "not_fax_on": "",
        "requires_approval": False,
        "public_domain_override": "",
    }


def _match(existing: dict[str, Contact], values: dict[str, Any]) -> Contact | None:
    """The contact this row names (same kind, same address as the gateway compares them)."""
    address = str(values["address"])
    keys = ["=" + address]
    with contextlib.suppress(AddressSyntaxError):
        if values.get("kind", "address") == "domain":
            keys = ["@" + normalise("postmaster@" + address.strip()).domain]
        else:
            keys.append(normalise(address).key)
    return next((existing[k] for k in keys if k in existing), None)


# checked()'s reasons start with what they are about; the CSV says which column that is.
_SUBJECTS = (
    ("address ", "address"),
    ("domain", "address"),
    ("display name ", "display_name"),
    ("review date ", "review_due"),
    ("organisation ", "organisation"),
    ("approved by ", "approved_by"),
    ("verified how ", "verified_how"),
)


def _checked(c: Contact, public: PublicDomains) -> Contact:
    try:
        return checked(c, public)
    except PublicDomainError as exc:
        raise CellError(
            "address", c.address, f"{exc.reason}, or give a public_domain_override reason"
        ) from None
    except ContactError as exc:
        reason = str(exc)
        for prefix, column in _SUBJECTS:
            if reason.startswith(prefix):
                value = str(getattr(c, column))
                raise CellError(column, value, reason.removeprefix(prefix).lstrip(": ")) from None
        raise
