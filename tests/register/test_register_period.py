"""A local date as the register reads a period: the command line, the console's filter and
its Reports page share one conversion to ``[since, until)`` timestamps."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from gateway.register.period import day_start, parse_day
from gateway.web.pages_register import filters_of
from gateway.web.pages_reports import Period


def test_a_day_starts_at_local_midnight_and_until_takes_the_whole_day() -> None:
    midnight = datetime(2026, 12, 1).astimezone().timestamp()
    assert day_start(date(2026, 12, 1)) == midnight
    assert day_start(date(2026, 12, 1), end=True) == midnight + 86400.0
    assert parse_day("2026-12-01") == midnight
    assert parse_day("2026-12-01", end=True) == midnight + 86400.0
    with pytest.raises(ValueError):
        parse_day("2026-13-01")


@pytest.mark.usefixtures("london")
def test_until_takes_the_whole_day_when_the_clocks_change() -> None:
    # London: 2026-10-25 has 25 hours, 2026-03-29 has 23.
    for day, hours in ((date(2026, 10, 25), 25), (date(2026, 3, 29), 23)):
        end = day_start(day, end=True)
        assert end - day_start(day) == hours * 3600.0
        assert datetime.fromtimestamp(end) == datetime(day.year, day.month, day.day + 1)


def test_the_console_filter_and_reports_page_read_a_period_alike() -> None:
    f = filters_of({"since": "2026-11-01", "until": "2026-11-30"})
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    assert (f.since, f.until) == period.bounds()
    assert f.since == datetime(2026, 11, 1).astimezone().timestamp()
    assert filters_of({"since": "1 Nov"}).since is None
