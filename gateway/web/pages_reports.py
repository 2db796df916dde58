"""Reports: the register at a glance for managers and admins, as charts a manager reads in
seconds, each with its figures as a table beneath and as CSV.

The figures are :func:`gateway.register.summary.summarise`'s, the ones ``c4f-gateway
register report --summary`` prints, limited to what the viewer may read (``[web]
manager_scope``, :mod:`.register_scope`). The period travels in the URL
(``?since=YYYY-MM-DD&until=YYYY-MM-DD``, local dates, ``until`` included, as the
command's): dates name no one, and a chart's CSV link carries the same period. Without
one the page shows the last 12 months, this one included.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.register.period import day_start
from gateway.register.record import CONSENT_VALUES, CONSENT_WORDS
from gateway.register.summary import Summary, summarise
from gateway.register.summary_formats import summary_csv, totals
from gateway.web.auth import Viewer, console_of, viewer
from gateway.web.charts import Chart, Series, Table, cell_text, columns, horizontal
from gateway.web.register_scope import viewer_scope
from gateway.web.render import download, page

CONSENT_COLOURS = {
    "obtained": "#007a5e",
    "refused": "#d55e00",
    "not-sought": "#0072b2",
    "not-recorded": "#6f777b",
}
HELD = Series("held", "held", "#0072b2")
DECIDED = Series("decided", "decided", "#d55e00")
HOURS = Series("median_hours", "median hours to decision", "#6f777b")
COUNT = Series("records", "records", "#b35900")
DISCLOSURES = Series("disclosures", "disclosures", "#0072b2")
CHART_NAMES = ("disclosures", "organisations", "holds", "incomplete")
FIRST_YEAR = 2000  # local midnight of year 1 is not a timestamp
MAX_MONTHS = 120  # one column a month: ten years is already more than a page holds


@dataclass(frozen=True)
class Period:
    since: date
    until: date  # included

    @property
    def query(self) -> str:
        return f"since={self.since.isoformat()}&until={self.until.isoformat()}"

    def bounds(self) -> tuple[float, float]:
        """``[since, until)`` as timestamps: local midnight, as ``register report --since``."""
        return day_start(self.since), day_start(self.until, end=True)


def last_twelve_months(today: date) -> Period:
    month = today.year * 12 + today.month - 1 - 11
    return Period(date(month // 12, month % 12 + 1, 1), today)


def period_of(since: str, until: str, today: date) -> tuple[Period, str]:
    """The period asked for, or the default with the reason it was not taken."""
    default = last_twelve_months(today)
    try:
        start = date.fromisoformat(since) if since else default.since
        end = date.fromisoformat(until) if until else today
    except ValueError:
        return default, "Not a date (YYYY-MM-DD): showing the last 12 months."
    if end < start:
        return default, "The end of the period is before its start: showing the last 12 months."
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    if start.year < FIRST_YEAR or months > MAX_MONTHS:
        return default, (
            f"A period starts in {FIRST_YEAR} or later and spans at most "
            f"{MAX_MONTHS // 12} years: showing the last 12 months."
        )
    return Period(start, end), ""


def report_charts(s: Summary) -> list[Chart]:
    """The four charts of a summary, in the order of ``CHART_NAMES``."""
    months = [m for m, _ in s.by_month]
    consent = [Series(c, CONSENT_WORDS[c], CONSENT_COLOURS[c]) for c in CONSENT_VALUES]
    hold_months = [m for m, *_ in s.holds_by_month]
    holds = {
        m: {"held": h, "decided": d, "median_hours": hours} for m, h, d, hours in s.holds_by_month
    }
    held = columns(
        "holds",
        "Held for approval, and time to a decision",
        "Messages held for a line manager's approval each month and how many were decided; "
        "below, the median hours from hold to decision.",
        hold_months,
        [HELD, DECIDED],
        holds,
        stacked=False,
    )
    hours = columns(
        "decision-hours",
        "Median hours to a decision",
        "The median time, in hours, from a message being held to its line manager's decision, "
        "by the month it was sent.",
        hold_months,
        [HOURS],
        holds,
        stacked=False,
        unit="h",
        legend=True,
    )
    return [
        columns(
            "disclosures",
            "Disclosures per month, by consent",
            "Messages that left for another organisation each month, stacked by the consent "
            "recorded for them: obtained, refused, not sought, not recorded.",
            months,
            consent,
            dict(s.by_month),
            stacked=True,
            totals=True,
        ),
        horizontal(
            "organisations",
            "Disclosures per receiving organisation (top 15)",
            "The organisations that received the most disclosures in the period, most first.",
            s.by_organisation,
            DISCLOSURES,
            first_column="Organisation",
        ),
        replace(
            held,
            also=(hours.svg,),
            # One table for both pictures: the month's held, decided and median hours.
            table=Table(("Month", HELD.label, DECIDED.label, HOURS.label), tuple(s.holds_by_month)),
        ),
        columns(
            "incomplete",
            "Incomplete records by age",
            "Disclosures whose details (consent, reason) are still incomplete, by how long ago "
            "they were sent.",
            [band for band, _ in s.incomplete_by_age],
            [COUNT],
            {band: {COUNT.key: n} for band, n in s.incomplete_by_age},
            stacked=False,
            first_column="Age",
        ),
    ]


async def _summary(request: Request, v: Viewer, period: Period) -> Summary:
    console = console_of(request)
    since, until = period.bounds()

    def read() -> Summary:
        return summarise(
            console.register,
            since=since,
            until=until,
            now=console.clock(),
            scope=viewer_scope(console, v),
        )

    return await asyncio.to_thread(read)


def _today(request: Request) -> date:
    return datetime.fromtimestamp(console_of(request).clock()).astimezone().date()


def _period(request: Request) -> tuple[Period, str]:
    q = request.query_params
    return period_of(q.get("since", "").strip(), q.get("until", "").strip(), _today(request))


async def reports_page(request: Request) -> Response:
    v = await viewer(request)
    period, problem = _period(request)
    s = await _summary(request, v, period)
    return await page(
        request,
        v,
        "reports.html",
        {
            "period": period,
            "problem": problem,
            "totals": totals(s),
            "charts": report_charts(s),
            "cell_text": cell_text,
        },
    )


async def report_csv(request: Request) -> Response:
    v = await viewer(request)
    name: str = request.path_params["name"]
    if name != "summary" and name not in CHART_NAMES:
        raise HTTPException(404)
    period, problem = _period(request)
    if problem:
        return PlainTextResponse(problem, status_code=400)
    s = await _summary(request, v, period)
    if name == "summary":
        body = summary_csv(s)  # exactly what `register report --summary --format csv` prints
    else:
        body = next(c for c in report_charts(s) if c.name == name).csv()
    filename = f"{name}-{period.since.isoformat()}-{period.until.isoformat()}.csv"
    return download(body, filename, "text/csv; charset=utf-8")


routes = [
    Route("/reports", reports_page, methods=["GET"]),
    Route("/reports/{name:str}.csv", report_csv, methods=["GET"]),
]
