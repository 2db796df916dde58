"""Bar charts for the Reports page, as inline SVG built on the server.

The console has no JavaScript and its CSP allows no inline style, so a chart is plain SVG
whose colours are presentation attributes (``fill``), not CSS. Every chart is built with
:mod:`xml.etree.ElementTree`, which escapes every text and attribute it writes: an
organisation called ``<script>`` or ``"x"`` comes out as text. Each chart carries a
``<title>`` and ``<desc>`` (its ``aria-label`` and ``aria-describedby``), and the same figures as a
:class:`Table` that the page shows beneath it for screen readers and hands out as CSV.
"""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup

from gateway.spreadsheet import safe_cell

WIDTH = 720
FONT = 12
PLOT_TOP = 16
Cell = str | int | float | None


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str  # dark enough for 3:1 against white (WCAG 1.4.11)


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Chart:
    name: str  # the CSV is /reports/<name>.csv
    title: str
    desc: str
    svg: Markup
    table: Table
    also: tuple[Markup, ...] = ()  # more pictures of the same table (drawn beneath svg)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.table.columns)
        writer.writerows([[safe_cell(cell_text(c)) for c in row] for row in self.table.rows])
        return out.getvalue()


def cell_text(value: Cell) -> str:
    """How a figure reads in a table and in the CSV: a count, hours to one decimal, or ''."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def month_label(month: str) -> tuple[str, str]:
    """``2026-01`` -> (``Jan``, ``2026``); anything else stays as it is."""
    try:
        d = date.fromisoformat(month + "-01")
    except ValueError:
        return month, ""
    return d.strftime("%b"), str(d.year)


def nice_top(largest: float) -> tuple[float, float]:
    """An axis maximum and step (1, 2 or 5 times a power of ten) with at most six ticks."""
    if largest <= 0:
        return 1.0, 1.0
    step = 1.0
    raw = largest / 5
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for m in (1, 2, 5, 10):
        step = float(m * power)
        if step >= raw:
            break
    return step * math.ceil(largest / step), step


def columns(
    name: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    values: Mapping[str, Mapping[str, float | None]],
    *,
    stacked: bool,
    first_column: str = "Month",
    unit: str = "",
    totals: bool = False,
    legend: bool | None = None,
) -> Chart:
    """Vertical bars per category: one column of stacked ``series`` or a group side by side."""
    left, bottom, plot_h = 44, 40, 220
    legend = len(series) > 1 if legend is None else legend  # one series: the title says it
    legend_h = 24 if legend else 0
    height = PLOT_TOP + legend_h + plot_h + bottom
    top = PLOT_TOP + legend_h
    figures = [[values.get(c, {}).get(s.key) for s in series] for c in categories]
    sums = [sum(v or 0 for v in row) for row in figures]
    largest = max((sums if stacked else [v or 0 for row in figures for v in row]), default=0)
    axis_max, step = nice_top(largest)
    svg, plot = _frame(name, title, desc, height)
    if legend:
        _legend(svg, series, left)
    _y_axis(svg, left, top, plot_h, axis_max, step, unit)
    slot = (WIDTH - left - 8) / max(1, len(categories))
    bar_w = min(48.0, slot * 0.7) / (1 if stacked else max(1, len(series)))
    roomy = slot >= 26  # room for a figure over each bar and a name under each column
    for i, cat in enumerate(categories):
        x0 = left + i * slot + (slot - bar_w * (1 if stacked else len(series))) / 2
        base: float = top + plot_h
        for j, s in enumerate(series):
            v = figures[i][j]
            if not v:
                continue
            h = plot_h * v / axis_max
            x = x0 if stacked else x0 + j * bar_w
            y = base - h if stacked else top + plot_h - h
            _bar(plot, x, y, bar_w, h, s, f"{cat}: {s.label} {cell_text(v)}{unit}", cat, v)
            if stacked:
                base -= h
            elif roomy:
                _text(plot, x + bar_w / 2, y - 3, cell_text(v), anchor="middle", size=10)
        if stacked and sums[i] and roomy:
            _text(plot, x0 + bar_w / 2, base - 3, cell_text(sums[i]), anchor="middle", size=10)
        first, second = month_label(cat) if first_column == "Month" else (cat, "")
        if not roomy and i and first != "Jan":
            continue  # many months: label the years only (the table names every month)
        _text(svg, left + (i + 0.5) * slot, top + plot_h + 15, first, anchor="middle")
        if second and (i == 0 or first == "Jan"):
            _text(svg, left + (i + 0.5) * slot, top + plot_h + 30, second, anchor="middle")
    if not any(sums):
        _text(svg, WIDTH / 2, top + plot_h / 2, "Nothing in this period", anchor="middle")
    heads = (first_column, *(s.label for s in series), *(("total",) if totals else ()))
    rows = tuple(
        (cat, *figures[i], *((sums[i],) if totals else ())) for i, cat in enumerate(categories)
    )
    return Chart(name, title, desc, _markup(svg, plot), Table(heads, rows))


def horizontal(
    name: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, int]],
    series: Series,
    *,
    first_column: str,
) -> Chart:
    """One bar per row, longest first as given, its label on the left and its figure after it."""
    left, row_h, label_chars = 240, 24, 32
    height = PLOT_TOP + max(1, len(rows)) * row_h + 30
    axis_max, step = nice_top(max((n for _, n in rows), default=0))
    svg, plot = _frame(name, title, desc, height)
    plot_w = WIDTH - left - 40
    for i, (label, n) in enumerate(rows):
        y = PLOT_TOP + i * row_h
        shown = label if len(label) <= label_chars else label[: label_chars - 1] + "…"
        _text(svg, left - 6, y + row_h / 2 + 4, shown, anchor="end")
        w = plot_w * n / axis_max
        if n:
            _bar(plot, left, y + 4, w, row_h - 8, series, f"{label}: {n}", label, n)
        _text(plot, left + w + 4, y + row_h / 2 + 4, str(n))
    axis_y = PLOT_TOP + max(1, len(rows)) * row_h
    ET.SubElement(svg, "line", x1=str(left), y1=str(PLOT_TOP), x2=str(left), y2=_n(axis_y))
    ET.SubElement(svg, "line", x1=str(left), y1=_n(axis_y), x2=str(WIDTH - 40), y2=_n(axis_y))
    for k in range(round(axis_max / step) + 1):
        x = left + plot_w * k * step / axis_max
        _text(svg, x, axis_y + 16, cell_text(int(k * step)), anchor="middle", size=10)
    if not rows:
        _text(svg, WIDTH / 2, PLOT_TOP + row_h / 2 + 4, "Nothing in this period", anchor="middle")
    table = Table((first_column, series.label), tuple((label, n) for label, n in rows))
    return Chart(name, title, desc, _markup(svg, plot), table)


def _frame(name: str, title: str, desc: str, height: float) -> tuple[ET.Element, ET.Element]:
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {_n(height)}",
            "class": "chart",
            "id": f"chart-{name}",
            "role": "img",
            "aria-label": title,
            "aria-describedby": f"chart-{name}-desc",
            "font-size": str(FONT),
            "font-family": "system-ui, sans-serif",
            "stroke": "#505a5f",
        },
    )
    ET.SubElement(svg, "title", id=f"chart-{name}-title").text = title
    ET.SubElement(svg, "desc", id=f"chart-{name}-desc").text = desc
    plot = ET.Element("g", {"class": "bars"})  # drawn last, over the grid (see _markup)
    return svg, plot


def _legend(svg: ET.Element, series: Sequence[Series], left: float) -> None:
    g = ET.SubElement(svg, "g", {"class": "legend"})
    x = left
    for s in series:
        ET.SubElement(
            g, "rect", x=_n(x), y="2", width="12", height="12", fill=s.colour, stroke="none"
        )
        _text(g, x + 16, 12, s.label)
        x += 16 + len(s.label) * 7 + 20


def _y_axis(
    svg: ET.Element, left: float, top: float, plot_h: float, axis_max: float, step: float, unit: str
) -> None:
    for k in range(round(axis_max / step) + 1):
        y = top + plot_h - plot_h * k * step / axis_max
        ET.SubElement(
            svg, "line", x1=_n(left), y1=_n(y), x2=str(WIDTH - 8), y2=_n(y), stroke="#d8dadb"
        )
        _text(svg, left - 6, y + 4, f"{int(k * step)}{unit}", anchor="end", size=10)
    ET.SubElement(svg, "line", x1=_n(left), y1=_n(top), x2=_n(left), y2=_n(top + plot_h))


def _bar(
    g: ET.Element,
    x: float,
    y: float,
    w: float,
    h: float,
    s: Series,
    tip: str,
    category: str,
    value: float,
) -> None:
    rect = ET.SubElement(
        g,
        "rect",
        {
            "class": "bar",
            "x": _n(x),
            "y": _n(y),
            "width": _n(w),
            "height": _n(h),
            "fill": s.colour,
            "stroke": "#fff",
            "data-series": s.key,
            "data-category": category,
            "data-value": cell_text(value),
        },
    )
    ET.SubElement(rect, "title").text = tip


def _text(
    parent: ET.Element, x: float, y: float, words: str, *, anchor: str = "start", size: int = FONT
) -> None:
    t = ET.SubElement(
        parent,
        "text",
        {"x": _n(x), "y": _n(y), "stroke": "none", "fill": "#1b1b1b", "text-anchor": anchor},
    )
    if size != FONT:
        t.set("font-size", str(size))
    t.text = words


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _markup(svg: ET.Element, plot: ET.Element) -> Markup:
    svg.append(plot)
    # ElementTree escaped every text and attribute above; nothing else goes in.
    return Markup(ET.tostring(svg, encoding="unicode"))  # noqa: S704
