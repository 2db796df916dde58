"""The Reports page's SVG charts on their own: escaping, names for screen readers, bars
whose heights follow the figures, the text table and the CSV (formula cells defused)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

from gateway.web.charts import Series, columns, horizontal, nice_top

NS = {"s": "http://www.w3.org/2000/svg"}
CONSENT = [
    Series("obtained", "obtained", "#007a5e"),
    Series("refused", "refused", "#d55e00"),
    Series("not-sought", "not sought", "#0072b2"),
]
ORG = Series("messages", "messages", "#0072b2")
ORG_RECORDS = Series("records", "records", "#b35900")


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 (our own output, read back)


def _bars(svg: ET.Element) -> list[ET.Element]:
    return [r for r in svg.iterfind(".//s:rect", NS) if r.get("class") == "bar"]


def test_stacked_columns_stack_each_month_and_say_what_they_show() -> None:
    chart = columns(
        "disclosures",
        "Disclosures per month",
        "Messages sent each month, by consent status",
        ["2026-01", "2026-02"],
        CONSENT,
        {"2026-01": {"obtained": 3, "refused": 1}, "2026-02": {"not-sought": 4}},
        stacked=True,
        totals=True,
    )
    svg = _parse(chart.svg)
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "Disclosures per month"
    assert svg.get("aria-describedby") == "chart-disclosures-desc"
    assert svg.find("s:title", NS).text == "Disclosures per month"  # type: ignore[union-attr]
    assert svg.find("s:desc", NS).text == (  # type: ignore[union-attr]
        "Messages sent each month, by consent status"
    )
    bars = _bars(svg)
    assert [(b.get("data-category"), b.get("data-series"), b.get("data-value")) for b in bars] == [
        ("2026-01", "obtained", "3"),
        ("2026-01", "refused", "1"),
        ("2026-02", "not-sought", "4"),
    ]
    h = {(b.get("data-category"), b.get("data-series")): float(b.get("height", "")) for b in bars}
    # Stacked: January's two parts add up to February's single 4-message column.
    assert h[("2026-01", "obtained")] + h[("2026-01", "refused")] == h[("2026-02", "not-sought")]
    jan_ob, jan_ref = (b for b in bars if b.get("data-category") == "2026-01")
    assert float(jan_ref.get("y", "")) + float(jan_ref.get("height", "")) == float(
        jan_ob.get("y", "")
    )
    legend = [t.text for t in svg.iterfind("s:g[@class='legend']/s:text", NS)]
    assert legend == ["obtained", "refused", "not sought"]
    assert chart.table.columns == ("Month", "obtained", "refused", "not sought", "total")
    assert chart.table.rows == (("2026-01", 3, 1, None, 4), ("2026-02", None, None, 4, 4))
    assert chart.csv() == (
        "Month,obtained,refused,not sought,total\r\n2026-01,3,1,,4\r\n2026-02,,,4,4\r\n"
    )


def test_grouped_columns_stand_side_by_side_with_hours_to_one_decimal() -> None:
    held, decided = Series("held", "held", "#0072b2"), Series("decided", "decided", "#d55e00")
    chart = columns(
        "holds",
        "Held messages",
        "Held and decided each month",
        ["2026-03"],
        [held, decided],
        {"2026-03": {"held": 2, "decided": 1}},
        stacked=False,
    )
    a, b = _bars(_parse(chart.svg))
    assert float(a.get("x", "")) + float(a.get("width", "")) == float(b.get("x", ""))
    assert float(a.get("height", "")) == 2 * float(b.get("height", ""))
    hours = columns(
        "decision-hours",
        "Time to decision",
        "Median hours",
        ["2026-03", "2026-04"],
        [Series("median_hours", "median hours", "#505a5f")],
        {"2026-03": {"median_hours": 5.25}, "2026-04": {"median_hours": None}},
        stacked=False,
    )
    assert [b.get("data-value") for b in _bars(_parse(hours.svg))] == ["5.2"]
    assert hours.csv() == "Month,median hours\r\n2026-03,5.2\r\n2026-04,\r\n"


def test_organisation_names_are_text_never_markup_and_csv_formulas_are_defused() -> None:
    evil = '<script>go()</script> "Q" & Sons'
    formula = '=HYPERLINK("http://x.example")'
    chart = horizontal(
        "organisations",
        "Per receiving organisation",
        "Top 15",
        [(evil, 7), (formula, 2)],
        ORG,
        first_column="Organisation",
    )
    assert "<script>" not in chart.svg
    assert "&lt;script&gt;" in chart.svg
    svg = _parse(chart.svg)  # well-formed: the name could not break out of its element
    labels = [t.text for t in svg.iterfind("s:text", NS)]
    assert evil in labels and formula in labels
    tips = [b.find("s:title", NS).text for b in _bars(svg)]  # type: ignore[union-attr]
    assert tips == [f"{evil}: 7", f"{formula}: 2"]
    assert [b.get("data-category") for b in _bars(svg)] == [evil, formula]  # attributes too
    widths = [float(b.get("width", "")) for b in _bars(svg)]
    assert widths[0] > widths[1] > 0
    rows = list(csv.reader(io.StringIO(chart.csv())))
    assert rows == [["Organisation", "messages"], [evil, "7"], ["'" + formula, "2"]]


def test_long_names_are_shortened_in_the_picture_but_whole_in_the_table() -> None:
    name = "The Very Long Named Independent Fostering and Adoption Agency of the North"
    chart = horizontal("organisations", "t", "d", [(name, 1)], ORG, first_column="Organisation")
    labels = [t.text or "" for t in _parse(chart.svg).iterfind("s:text", NS)]
    assert any(x.endswith("…") and name.startswith(x[:-1]) for x in labels)
    assert chart.table.rows == ((name, 1),)


def test_an_empty_period_says_so() -> None:
    chart = columns("incomplete", "Incomplete", "d", [], [ORG], {}, stacked=False)
    svg = _parse(chart.svg)
    assert _bars(svg) == []
    assert "Nothing in this period" in [t.text for t in svg.iterfind("s:text", NS)]
    assert chart.csv() == "Month,messages\r\n"


def test_axis_tops_are_round_numbers() -> None:
    assert nice_top(0) == (1.0, 1.0)
    assert nice_top(3) == (3.0, 1.0)
    assert nice_top(7) == (8.0, 2.0)
    assert nice_top(23) == (25.0, 5.0)
    assert nice_top(480) == (500.0, 100.0)


def test_many_months_are_labelled_by_year_and_keep_every_bar() -> None:
    months = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)]
    values = {m: {"records": 1} for m in months}
    chart = columns("many", "t", "d", months, [ORG_RECORDS], values, stacked=False)
    svg = _parse(chart.svg)
    assert len(_bars(svg)) == 36
    labels = [t.text for t in svg.iterfind("s:text", NS)]
    assert labels.count("Jan") == 3 and "Feb" not in labels
    assert [x for x in labels if x and x.startswith("20")] == ["2024", "2025", "2026"]
    assert "1" not in [t.text for t in svg.iterfind("s:g/s:text", NS)]  # no figure over bars
    assert len(chart.table.rows) == 36
