"""The register's summary for people: a text report and a tidy CSV (one figure a row).

``c4f-gateway register report --summary`` prints these; the console's Reports page links
the same CSV, so a spreadsheet, the page and the command line agree to the row.
"""

from __future__ import annotations

import csv
import io

from gateway.register.formats import table
from gateway.register.record import CONSENT_VALUES, CONSENT_WORDS
from gateway.register.retention import local_day
from gateway.register.summary import Summary
from gateway.spreadsheet import safe_cell

TOTALS = (
    ("sent", "Accepted from staff"),  # held ones included: "sent" would mislead
    ("refused", "Refused at the door"),
    ("held_now", "Held for approval now"),
    ("without_consent", "Disclosures without consent"),
    ("incomplete", "Incomplete records"),
    ("inform_outstanding", '"Person informed" outstanding'),
)
CSV_HEADER = ("section", "item", "category", "value")


def period_words(s: Summary) -> str:
    """ "2026-11-01 to 2026-11-30" (``until`` is the end of its last day, excluded)."""
    start = local_day(s.since).isoformat() if s.since is not None else "the first entry"
    end = local_day(s.until - 1).isoformat() if s.until is not None else "now"
    return f"{start} to {end}"


def totals(s: Summary) -> list[tuple[str, str, int]]:
    """(field, words, figure) for the strip above the register list."""
    return [(key, words, int(getattr(s, key))) for key, words in TOTALS]


def summary_text(s: Summary) -> str:
    width = max(len(w) for _, w in TOTALS) + 2
    lines = [f"Register summary, {period_words(s)} (local time)", ""]
    lines += [f"  {words + ':':<{width}}{n:>7}" for _, words, n in totals(s)]
    out = "\n".join(lines) + "\n\n"
    out += "Disclosures per month, by consent\n"
    out += table(
        ("Month", *(CONSENT_WORDS[c].capitalize() for c in CONSENT_VALUES), "Total"),
        [
            (m, *(str(counts[c]) for c in CONSENT_VALUES), str(sum(counts.values())))
            for m, counts in s.by_month
        ],
    )
    out += "\nDisclosures per receiving organisation (top 15)\n"
    out += (
        table(("Organisation", "Disclosures"), [(o, str(n)) for o, n in s.by_organisation])
        if s.by_organisation
        else "  none\n"
    )
    out += "\nHeld for approval, and time to a line manager's decision\n"
    out += table(
        ("Month", "Held", "Decided", "Median hours to decision"),
        [
            (m, str(held), str(decided), "" if hours is None else f"{hours:.1f}")
            for m, held, decided, hours in s.holds_by_month
        ],
    )
    out += "\nIncomplete records by age\n"
    out += table(("Age", "Records"), [(band, str(n)) for band, n in s.incomplete_by_age])
    return out


def summary_rows(s: Summary) -> list[tuple[str, str, str, str]]:
    rows = [("totals", key, "", str(n)) for key, _, n in totals(s)]
    rows += [("by_month", m, c, str(counts[c])) for m, counts in s.by_month for c in CONSENT_VALUES]
    rows += [("by_organisation", o, "", str(n)) for o, n in s.by_organisation]
    for m, held, decided, hours in s.holds_by_month:
        rows += [
            ("holds_by_month", m, "held", str(held)),
            ("holds_by_month", m, "decided", str(decided)),
            ("holds_by_month", m, "median_hours", "" if hours is None else f"{hours:.1f}"),
        ]
    rows += [("incomplete_by_age", band, "", str(n)) for band, n in s.incomplete_by_age]
    return rows


def summary_csv(s: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows([safe_cell(c) for c in row] for row in summary_rows(s))
    return out.getvalue()
