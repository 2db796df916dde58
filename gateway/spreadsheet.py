"""CSV cells a spreadsheet would run as a formula (OWASP "CSV injection").

A cell that starts with = + - @, a tab or a carriage return is written behind an
apostrophe, so Excel or LibreOffice shows it as text; a file the gateway reads back (the
contact list) has the apostrophe taken off again, so an export round-trips.
"""

from __future__ import annotations

FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it, never runs it."""
    return "'" + text if text.startswith(FORMULA) else text


def cell_value(cell: str) -> str:
    """What :func:`safe_cell` wrote, as it was."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA) else cell
