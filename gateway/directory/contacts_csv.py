"""The approved-contact list as a CSV file: its columns (and the header names a
spreadsheet may use for them: ``Email``, ``Organization``...), ``contacts export``, and
reading a file into rows of checked cells for the import (:mod:`.contacts_import`), so
that an export reads back as it was written."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any, NamedTuple

from gateway.directory.contact import (
    BatchError,
    Contact,
    ContactError,
)
from gateway.directory.contacts import ContactRepository
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


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


_ALIASES = {_header_key(alias): name for name, aliases, _ in COLUMNS for alias in (name, *aliases)}


class CSVImportError(BatchError):
    """The file's header or rows are wrong; ``problems`` lists each, by line."""


class CellError(ContactError):
    """One cell is wrong: ``str(exc)`` is ``column: 'value' reason``."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(f"{column}: {value!r} {reason}")


def export_csv(repo: ContactRepository) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for c in repo.all():
        writer.writerow({k: safe_cell(v) for k, v in csv_row(c).items()})
    return out.getvalue()


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


def row_values(cells: list[str], header: dict[str, int]) -> dict[str, Any]:
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


def csv_row(c: Contact) -> dict[str, str]:
    row = {k: str(getattr(c, k)) for k in CSV_COLUMNS}
    for name in _YES_NO:
        row[name] = "yes" if getattr(c, name) else ""
    return row
