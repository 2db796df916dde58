"""Local dates as the register reads a period: ``--since``/``--until`` on the command
line, the console's register filter and its *Reports* page all mean the same
``[since, until)`` timestamps, ``until`` taken as a whole day."""

from __future__ import annotations

from datetime import date, datetime, timedelta


def day_start(day: date, *, end: bool = False) -> float:
    """Local midnight at the start of ``day`` as a timestamp; with ``end``, the next
    local midnight (the first instant after a period whose last day is ``day``: 23 or
    25 hours later on the days the clocks change)."""
    if end:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day).astimezone().timestamp()


def parse_day(text: str, *, end: bool = False) -> float:
    """``day_start`` of a ``YYYY-MM-DD`` date; ValueError if ``text`` is not one."""
    return day_start(date.fromisoformat(text), end=end)
