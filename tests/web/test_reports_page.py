"""The Reports page: the register at a glance as charts, for managers and admins.

A register (real keys, a real SQLite file) is seeded through its public API with a known
mix: disclosures under every consent status to three organisations (one named like
markup), a refusal at the door, a held message approved five hours later and one still
held, incomplete records of every age. The page's tables must carry exactly the figures
``c4f-gateway register report --summary --format csv`` prints for the same period (a real
subprocess). In Debian's chromium (JavaScript off) every chart is drawn with its bars, and
the print view fits the width of A4. Screenshots: ``tests/output/screenshots/reports-*.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from playwright.async_api import Page
from support.browser import chromium, context, need_chromium, shot, sign_in
from support.pki import TestCA
from support.register import accepted, record, refused
from support.subprocess_gateway import run_cli
from support.web import ADMIN, MANAGER, STAFF, Site, make_site, served, signed_in

from gateway.events import HoldEvent
from gateway.register.ledger import Register
from gateway.web.pages_reports import last_twelve_months

DAY, HOUR = 86400.0, 3600.0
ODD = '<script>alert(1)</script> "Sons" & Co'  # an organisation named like markup
HIDDEN = "Hidden Agency"  # only in a record of someone the manager does not manage
OTHER = "olga.other@c4f.example"


def _org(address: str, name: str) -> dict[str, dict[str, str]]:
    return {address: {"organisation": name}}


def seed(reg: Register, now: float, *, outsider: bool = False) -> None:
    """The known mix, by STAFF (the manager's report), at ages away from the age bands'
    edges (7, 30, 90 days) so the command line's clock and the console's agree."""

    def sent(qid: str, days: float, address: str, org: str, **disclosure: str) -> None:
        event = accepted(
            qid,
            now - days * DAY,
            rcpts=(address,),
            recipients=_org(address, org),
            disclosure={**disclosure, "external": True} if disclosure else None,
            staff=STAFF,
        )
        record(reg, event)

    def hold(qid: str, when: float, action: str, actor: str = "", **kw: object) -> None:
        with reg.store.transaction() as conn:
            reg.hold(conn, HoldEvent(qid, when, action, actor, **kw))  # type: ignore[arg-type]

    sent("Q1", 200, "j.smith@cafcass.example", "Cafcass North", consent="obtained")
    sent("Q2", 100, "k@police.example", "Police", consent="not-sought", reason="Court order")
    sent("Q3", 45, "head@school.example", ODD, consent="refused")  # no reason: incomplete
    sent("Q4", 20, "a@cafcass.example", "Cafcass North")  # consent not recorded: incomplete
    sent("Q5", 2, "k@police.example", "Police", consent="refused", reason="Risk of harm")
    hold("Q5", now - 2 * DAY, "held", reasons=("consent refused",))
    hold("Q5", now - 2 * DAY + 5 * HOUR, "approved", MANAGER, note="Agreed")
    sent("Q6", 2.5, "j.smith@cafcass.example", "Cafcass North", consent="obtained")
    hold("Q6", now - 2.5 * DAY, "held", reasons=("contact requires approval",))
    record(reg, dataclasses.replace(refused("R7", now - 10 * DAY), staff=STAFF))
    if outsider:
        record(
            reg,
            accepted(
                "Q8",
                now - 3 * DAY,
                rcpts=("x@hidden.example",),
                recipients=_org("x@hidden.example", HIDDEN),
                disclosure={"consent": "obtained", "external": True},
                staff=OTHER,
            ),
        )
    reg.checkpoint()  # as `serve` writes them: otherwise every page warns of none


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    seed(site.console.register, site.clock.now, outsider=True)
    return site


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_managers_and_admins_have_reports_staff_do_not(site: Site) -> None:
    with site.client() as client:
        signed_in(client, STAFF, "/held")
        assert 'href="/reports"' not in client.get("/held").text
        assert client.get("/reports").status_code == 403
        assert client.get("/reports/summary.csv").status_code == 403
    with site.client() as client:
        signed_in(client, MANAGER)
        assert 'href="/reports"' in client.get("/register").text
        reply = client.get("/reports")
        assert reply.status_code == 200
        assert reply.headers["content-security-policy"].startswith("default-src 'none'")
        assert "<script" not in reply.text  # the odd name is text, and there are no scripts
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;Sons&#34; &amp; Co" in reply.text
        assert " style=" not in reply.text  # the CSP allows no inline style
        assert reply.text.count("<h1") == 1
        assert '<label for="since">From</label>' in reply.text
        assert '<label for="until">To (included)</label>' in reply.text


def test_a_manager_counts_only_their_reports_an_admin_everything(site: Site) -> None:
    with site.client() as client:
        signed_in(client, MANAGER)
        mine = client.get("/reports").text
        orgs = _csv(client.get("/reports/organisations.csv").text)
    assert HIDDEN not in mine
    assert orgs == [
        ["Organisation", "disclosures"],
        ["Cafcass North", "2"],  # Q1, Q4: Q6 is held, not yet disclosed
        ["Police", "2"],
        [ODD, "1"],
    ]
    assert 'id="total-sent">6<' in mine
    with site.client() as client:
        signed_in(client, ADMIN)
        everything = client.get("/reports").text
        orgs = _csv(client.get("/reports/organisations.csv").text)
    assert 'id="total-sent">7<' in everything
    assert [HIDDEN, "1"] in orgs


def test_the_period_defaults_to_twelve_months_and_a_bad_one_says_why(site: Site) -> None:
    today = datetime.fromtimestamp(site.clock.now).astimezone().date()
    default = last_twelve_months(today)
    assert default.until == today and default.since.day == 1
    assert (today.year * 12 + today.month) - (default.since.year * 12 + default.since.month) == 11
    assert last_twelve_months(date(2026, 12, 6)).since == date(2026, 1, 1)
    assert last_twelve_months(date(2026, 3, 31)).since == date(2025, 4, 1)
    with site.client() as client:
        signed_in(client, MANAGER)
        page = client.get("/reports").text
        assert f'name="since" value="{default.since.isoformat()}"' in page
        assert f'name="until" value="{today.isoformat()}"' in page
        bad = client.get("/reports?since=2026-13-01").text
        assert "Not a date (YYYY-MM-DD): showing the last 12 months." in bad
        assert f'name="since" value="{default.since.isoformat()}"' in bad
        backwards = client.get("/reports?since=2026-05-02&until=2026-05-01").text
        assert "The end of the period is before its start" in backwards
        for far in ("since=0001-01-01&until=0001-12-31", "since=2000-01-01&until=2026-01-01"):
            refused = client.get(f"/reports?{far}")
            assert refused.status_code == 200
            assert "spans at most 10 years: showing the last 12 months." in refused.text
        assert (
            "A period starts in 2000 or later"
            in client.get("/reports/holds.csv?since=0001-01-01&until=0001-12-31").text
        )
        reply = client.get("/reports/disclosures.csv?since=nonsense")
        assert reply.status_code == 400 and "Not a date" in reply.text
        missing = client.get("/reports/everything.csv")
        assert (missing.status_code, missing.text) == (404, "Not found.")
        # A period with nothing in it: every chart says so, and the CSVs are headers only.
        empty = client.get("/reports?since=2001-01-01&until=2001-02-28").text
        assert empty.count("Nothing in this period") >= 4
        assert client.get("/reports/organisations.csv?since=2001-01-01&until=2001-02-28").text == (
            "Organisation,disclosures\r\n"
        )


# -- in a real browser, against the command line ------------------------------------------


async def _table(page: Page, name: str) -> list[list[str]]:
    rows = page.locator(f"#table-{name} tbody tr")
    return [
        [c.strip() for c in await rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(await rows.count())
    ]


def _cli_summary(site: Site, since: date, until: date) -> str:
    done = run_cli(
        "register",
        "report",
        "--summary",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--format",
        "csv",
        "--config",
        site.settings.source,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
async def test_reports_in_chromium_match_the_command_line_and_print_on_a4(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    seed(site.console.register, site.clock.now)
    today = datetime.fromtimestamp(site.clock.now).astimezone().date()
    period = last_twelve_months(today)
    async with served(site) as url, chromium() as browser:
        page = await (await context(browser, url)).new_page()
        await sign_in(page, MANAGER)
        nav = page.get_by_role("navigation", name="Main")
        async with page.expect_navigation():
            await nav.get_by_role("link", name="Reports").click()
        assert page.url.endswith("/reports"), page.url
        assert await page.get_by_role("heading", level=1).inner_text() == "Reports"
        await shot(page, "reports-01-manager")

        # Every chart is there, named, with a bar for every non-zero figure of its table.
        for name, figures in (
            ("disclosures", slice(1, 5)),
            ("organisations", slice(1, 2)),
            ("holds", slice(1, 3)),
            ("incomplete", slice(1, 2)),
        ):
            svg = page.locator(f"svg#chart-{name}")
            assert await svg.get_attribute("role") == "img"
            assert await svg.get_attribute("aria-label")
            table = await _table(page, name)
            nonzero = sum(1 for row in table for v in row[figures] if v not in ("", "0"))
            assert nonzero > 0, name
            assert await svg.locator("rect.bar").count() == nonzero, name
        assert await page.locator("svg#chart-decision-hours rect.bar").count() == 1
        assert await page.locator("script").count() == 0

        # The tables hold exactly the command line's figures for the same period.
        cli = _cli_summary(site, period.since, period.until)
        rows = _csv(cli)
        assert rows[0] == ["section", "item", "category", "value"]
        expected: dict[str, list[list[str]]] = {}
        for section, item, category, value in rows[1:]:
            expected.setdefault(section, []).append([item, category, value])
        totals = {item: value for item, _, value in expected["totals"]}
        for key, value in totals.items():
            assert await page.locator(f"#total-{key}").inner_text() == value, key
        assert totals == {
            "sent": "6",
            "refused": "1",
            "held_now": "1",
            "without_consent": "3",
            "incomplete": "2",
            "inform_outstanding": "3",
        }
        consent = ("obtained", "refused", "not-sought", "not-recorded")
        by_month = {(m, c): v for m, c, v in expected["by_month"]}
        disclosures = await _table(page, "disclosures")
        assert len(disclosures) == 12 == len(by_month) // 4
        for month, *figures, total in disclosures:
            assert figures == [by_month[(month, c)] for c in consent], month
            assert int(total) == sum(map(int, figures))
        assert await _table(page, "organisations") == [
            [org, value] for org, _, value in expected["by_organisation"]
        ]
        assert [row[0] for row in await _table(page, "organisations")] == [
            "Cafcass North",
            "Police",
            ODD,  # as text, whole
        ]
        holds = {(m, c): v for m, c, v in expected["holds_by_month"]}
        table = await _table(page, "holds")
        assert [
            [m, holds[(m, "held")], holds[(m, "decided")], holds[(m, "median_hours")]]
            for m, *_ in table
        ] == table
        assert sum(int(row[1]) for row in table) == 2
        assert [row[3] for row in table if row[3]] == ["5.0"]  # approved after five hours
        assert await _table(page, "incomplete") == [
            [band, value] for band, _, value in expected["incomplete_by_age"]
        ]

        # The CSV links: the whole summary is byte for byte the command's, each chart its table.
        reply = await page.request.get(f"/reports/summary.csv?{period.query}")
        # (run_cli reads text mode, so the command's CRLF line ends arrive as LF)
        assert reply.ok and (await reply.text()).replace("\r\n", "\n") == cli
        for name in ("disclosures", "organisations", "holds", "incomplete"):
            link = page.locator(f"#table-{name} caption a")
            href = await link.get_attribute("href")
            assert href == f"/reports/{name}.csv?{period.query}"
            reply = await page.request.get(href)
            heads = await page.locator(f"#table-{name} thead th").all_inner_texts()
            assert _csv(await reply.text()) == [heads, *await _table(page, name)], name
            assert reply.headers["content-disposition"] == (
                f'attachment; filename="{name}-{period.since}-{period.until}.csv"'
            )

        # Choosing a period: only the months asked for.
        await page.get_by_label("From", exact=True).fill((today.replace(day=1)).isoformat())
        await page.get_by_label("To (included)", exact=True).fill(today.isoformat())
        async with page.expect_navigation():
            await page.get_by_role("button", name="Show").click()
        assert len(await _table(page, "disclosures")) == 1
        await page.go_back()

        # Print: A4 portrait is 794 CSS px wide at 96 dpi; no navigation, charts fit.
        await page.set_viewport_size({"width": 794, "height": 1123})
        await page.emulate_media(media="print")
        assert not await page.locator("header.top").is_visible()
        assert not await page.locator("form.period").is_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 794
        for name in ("disclosures", "organisations", "holds", "decision-hours", "incomplete"):
            box = await page.locator(f"svg#chart-{name}").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 794, name
            assert box["width"] > 600, name  # scaled to the page, not a thumbnail
        await shot(page, "reports-02-print-a4")
        await page.context.close()

        # 200% zoom: half the CSS width at twice the pixel density; nothing scrolls sideways.
        zoomed = await context(
            browser, url, viewport={"width": 640, "height": 900}, device_scale_factor=2
        )
        page = await zoomed.new_page()
        await sign_in(page, MANAGER)
        await page.goto("/reports")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 640
        await shot(page, "reports-03-zoom-200-percent")
        await zoomed.close()
