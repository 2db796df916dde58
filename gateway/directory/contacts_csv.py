"""The approved-contact list as CSV: export, and an import that round-trips it.

``contacts export`` writes every column; ``contacts import`` reads that file back (or a
spreadsheet's: headers are matched case-insensitively, with common aliases such as
``Email`` or ``Organization``) and plans each row before anything is written
(:func:`plan_import`, which the console's preview shows): a row equal to the contact it
names is *unchanged* and writes nothing; a row that differs is an *update* (refused unless
asked for); any other row is an *add*. The import writes the plan all rows or none, in one
transaction, with one audit row and one register entry per contact that changes
(:meth:`gateway.directory.contacts.ContactRepository.add_all`).

A column the file leaves out (all but :data:`REQUIRED`), or an empty approved_on or
review_due cell, keeps the contact's current value on an update; on an add it takes the
:data:`COLUMNS` default. Problems name the line, the
column and the value: ``line 7, review_due: '06/12/2026' is not YYYY-MM-DD``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal, NamedTuple

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
from gateway.directory.public_domains import PublicDomains
from gateway.spreadsheet import cell_value, safe_cell

# Every column in export order: (name, other header names accepted, what an add takes when
# the file has no such column). Shown by ``contacts import --help`` and the console.
COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("kind", ("type",), "address ('address' or 'domain')"),
    ("address", ("email", "e-mail", "email address", "mail", "domain"), "required"),
    ("display_name", ("name", "full name", "contact name"), "empty (required for addresses)"),
    ("organisation", ("organization", "org", "agency"), "required"),
    ("role", ("job title", "position"), "empty"),
    ("approved_by", ("approver",), "required"),
    ("approved_on", ("approved", "approval date", "date approved"), "today (YYYY-MM-DD)"),
    ("verified_how", ("verified", "how verified", "verification"), "required"),
    ("review_due", ("review", "review date", "review by"), "12 months after approved_on"),
    ("notes", ("note", "comments", "comment"), "empty"),
    ("unusual", ("allow unusual",), "empty ('yes': match an unusual address exactly)"),
    ("not_fax_by", ("not fax by",), "empty (who attested the address is not a fax route)"),
    ("not_fax_on", ("not fax on",), "empty (when, YYYY-MM-DD)"),
    (
        "requires_approval",
        ("manager approval", "needs approval"),
        "empty ('yes': held for a line manager)",
    ),
    (
        "public_domain_override",
        ("public domain override",),
        "empty (why a whole public webmail domain is approved anyway)",
    ),
)
CSV_COLUMNS = tuple(name for name, _, _ in COLUMNS)
REQUIRED = ("address", "organisation", "approved_by", "verified_how")
EXAMPLE = (
    "kind,address,display_name,organisation,role,approved_by,approved_on,verified_how,"
    "review_due,notes,unusual,not_fax_by,not_fax_on,requires_approval,public_domain_override\r\n"
    "address,j.whitaker@cafcass.gov.uk,Jane Whitaker,Cafcass,Family court adviser,Sam Admin,"
    "2026-03-01,phoned back on a known number,2027-03-01,,,,,,\r\n"
)
_YES_NO = ("unusual", "requires_approval")
_DATES = ("approved_on", "review_due", "not_fax_on")

Action = Literal["add", "update", "unchanged", "problem"]


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


_ALIASES = {_header_key(alias): name for name, aliases, _ in COLUMNS for alias in (name, *aliases)}


class CSVImportError(BatchError):
    """The file's header or rows are wrong; ``problems`` lists each, by line."""


class CellError(ContactError):
    """One cell is wrong: ``str(exc)`` is ``column: 'value' reason``."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(f"{column}: {value!r} {reason}")


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


def export_csv(repo: ContactRepository) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for c in repo.all():
        writer.writerow({k: safe_cell(v) for k, v in csv_row(c).items()})
    return out.getvalue()


def import_csv(
    repo: ContactRepository,
    text: str,
    actor: str,
    reject: Callable[[str], str | None] = lambda a: None,
    *,
    update: bool = False,
    progress: Callable[[int, int], None] | None = None,
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
    if progress is not None:
        total = len(plan.rows)
        entries_in: Iterable[tuple[str, Contact | ContactError]] = _counted(
            entries, total - len(entries), total, progress
        )
    else:
        entries_in = entries
    try:
        stored = iter(repo.add_all(entries_in, actor, "import"))
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
    reject: Callable[[str], str | None] = lambda a: None,
    *,
    update: bool = False,
    progress: Callable[[int, int], None] | None = None,
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
    if progress is not None and rows:
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
        if progress is not None and row.action not in ("add", "update"):
            finished += 1
            progress(finished, len(rows))
    return plan


class CSVRow(NamedTuple):
    line: int  # where the row starts (a quoted cell may hold line breaks)
    cells: list[str]  # one per header column, padded with empty cells
    extra: int  # cells beyond the header's


def csv_rows(text: str) -> tuple[dict[str, int], list[CSVRow]]:
    """The header (column name to its place in the file) and the rows, each with the line
    it starts on (rows with every cell empty left out; unnamed columns ignored);
    :class:`CSVImportError` if the header is wrong."""
    lines = io.StringIO(text)
    reader = csv.reader(lines)
    names = next(reader, [])
    header: dict[str, int] = {}
    unknown: list[str] = []
    for place, name in enumerate(names):
        column = _ALIASES.get(_header_key(name))
        if not name.strip():
            continue  # a spreadsheet's empty trailing column
        if column is None:
            unknown.append(repr(name))
        elif column in header:
            unknown.append(f"{name!r} (a second {column} column)")
        else:
            header[column] = place
    problems = []
    if not names:
        problems.append("the file is empty")
    elif missing := [c for c in REQUIRED if c not in header]:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if problems:
        raise CSVImportError(
            [f"line 1, header: {'; '.join(problems)} (see 'contacts import --help')"]
        )
    rows: list[CSVRow] = []
    start = reader.line_num + 1
    for cells in reader:
        if any(cells):
            pad = [""] * (len(names) - len(cells))
            rows.append(CSVRow(start, cells + pad, max(0, len(cells) - len(names))))
        start = reader.line_num + 1
    return header, rows


def _plan_row(
    line: int,
    cells: list[str],
    header: dict[str, int],
    existing: dict[str, Contact],
    today: date,
    update: bool,
    public: PublicDomains,
) -> RowPlan:
    values = _values(cells, header)
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


def _values(cells: list[str], header: dict[str, int]) -> dict[str, Any]:
    """The row's cells by column name, checked one by one (only the file's columns)."""
    values: dict[str, Any] = {}
    for column, place in header.items():
        cell = cell_value(cells[place])
        value: str | bool = cell
        if column == "kind":
            value = cell.strip().lower() or "address"
            if value not in ("address", "domain"):
                raise CellError(column, cell, "is not 'address' or 'domain'")
        elif column in _YES_NO:
            if cell.strip().lower() not in ("", "yes", "no"):
                raise CellError(column, cell, "is not 'yes', 'no' or empty")
            value = cell.strip().lower() == "yes"
        elif column in _DATES and cell.strip():
            try:
                value = date.fromisoformat(cell.strip()).isoformat()
            except ValueError:
                raise CellError(column, cell, "is not YYYY-MM-DD") from None
        elif column in REQUIRED and not cell.strip():
            raise CellError(column, cell, "is empty; it is required")
        values[column] = value
    return values


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


def csv_row(c: Contact) -> dict[str, str]:
    row = {k: str(getattr(c, k)) for k in CSV_COLUMNS}
    for name in _YES_NO:
        row[name] = "yes" if getattr(c, name) else ""
    return row
