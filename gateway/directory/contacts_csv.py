"""The approved-contact list as CSV: export, and import all rows or none.

``contacts export`` and ``contacts import`` (and the console's import preview, which reads
rows with :func:`contact_from_csv` so that what it calls fine is what the import accepts).
An export always has every column; an import may leave out the columns added since the
first release (:data:`OPTIONAL_COLUMNS`), so files exported before still import.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date

from gateway.directory.contacts import (
    BatchError,
    Contact,
    ContactError,
    ContactRepository,
    checked,
    review_date,
)

CSV_COLUMNS = tuple(
    "kind address display_name organisation role approved_by approved_on verified_how "  # noqa: SIM905 (word list)
    "review_due notes unusual not_fax_by not_fax_on requires_approval".split()
)
# Added after the first release: a file without them reads them as empty (not required).
OPTIONAL_COLUMNS = frozenset({"requires_approval"})
_YES_NO = ("unusual", "requires_approval")  # cells "yes" or empty

Row = dict[str, str | None]


class CSVImportError(BatchError):
    """The file's header or rows are wrong; ``problems`` lists each, by line."""


def export_csv(repo: ContactRepository) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for c in repo.all():
        writer.writerow({k: _cell_out(v) for k, v in csv_row(c).items()})
    return out.getvalue()


def import_csv(
    repo: ContactRepository,
    text: str,
    actor: str,
    reject: Callable[[str], str | None] = lambda a: None,
) -> list[Contact]:
    """All rows or none. ``reject(address)`` may veto a row (e.g. a fax route)."""
    today = repo.today()
    entries: list[tuple[str, Contact | ContactError]] = []
    for line, raw in csv_rows(text):
        try:
            c = contact_from_csv(raw, today)
            veto = reject(c.address) if c.kind == "address" else None
            entries.append((f"line {line}", ContactError(veto) if veto else c))
        except ContactError as exc:
            entries.append((f"line {line}", exc))
    try:
        return repo.add_all(entries, actor, "import")
    except BatchError as exc:
        raise CSVImportError(exc.problems) from None


def csv_rows(text: str) -> list[tuple[int, Row]]:
    """The rows with their line numbers; :class:`CSVImportError` if the header is wrong."""
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or [])
    missing = sorted(set(CSV_COLUMNS) - OPTIONAL_COLUMNS - header)
    extra = sorted(header - set(CSV_COLUMNS))
    if missing or extra:
        raise CSVImportError(
            [
                f"line 1: header: missing {', '.join(missing) or '-'}; "
                f"unknown {', '.join(extra) or '-'}"
            ]
        )
    return [(reader.line_num, raw) for raw in reader]


def contact_from_csv(raw: Row, today: date) -> Contact:
    """One row as the contact it approves, checked (:func:`gateway.directory.contacts.checked`);
    raises ContactError. Empty dates default as ``contacts add`` does."""
    v = {k: _cell_in(raw.get(k) or "") for k in CSV_COLUMNS}
    if None in raw:
        raise ContactError("more cells than columns")
    if v["kind"] not in ("address", "domain"):
        raise ContactError("kind must be 'address' or 'domain'")
    for name in _YES_NO:
        if v[name] not in ("", "yes"):
            raise ContactError(f"{name.replace('_', ' ')} must be 'yes' or empty")
    approved = v["approved_on"] or today.isoformat()
    try:
        due = v["review_due"] or review_date(date.fromisoformat(approved)).isoformat()
    except ValueError:
        raise ContactError("dates must be YYYY-MM-DD") from None
    return checked(
        Contact(
            id=0,
            kind="domain" if v["kind"] == "domain" else "address",
            address=v["address"],
            display_name=v["display_name"],
            organisation=v["organisation"],
            role=v["role"],
            approved_by=v["approved_by"],
            approved_on=approved,
            verified_how=v["verified_how"],
            review_due=due,
            notes=v["notes"],
            unusual=v["unusual"] == "yes",
            not_fax_by=v["not_fax_by"],
            not_fax_on=v["not_fax_on"],
            requires_approval=v["requires_approval"] == "yes",
        )
    )


def csv_row(c: Contact) -> dict[str, str]:
    row = {k: str(getattr(c, k)) for k in CSV_COLUMNS}
    for name in _YES_NO:
        row[name] = "yes" if getattr(c, name) else ""
    return row


# Spreadsheets run cells that start with these as formulas (CSV injection): export them
# behind a "'" and take it off again on import, so the file still round-trips.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell_out(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def _cell_in(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA) else value
