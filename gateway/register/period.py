"""Local dates as the register reads a period: ``--since``/``--until`` on the command
line, the console's register filter and its *Reports* page all mean the same
``[since, until)`` timestamps, ``until`` taken as a whole day."""

from __future__ import annotations

from datetime import date, datetime

DAY = 86400.0


def day_start(day: date, *, end: bool = False) -> float:
    """Local midnight at the start of ``day`` as a timestamp; with ``end``, a day later
    (the first instant after a period whose last day is ``day``)."""
    start = datetime(day.year, day.month, day.day).astimezone().timestamp()
    return start + DAY if end else start


def parse_day(text: str, *, end: bool = False) -> float:
    """``day_start`` of a ``YYYY-MM-DD`` date; ValueError if ``text`` is not one."""
    return day_start(date.fromisoformat(text), end=end)
