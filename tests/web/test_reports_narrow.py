"""The Reports page on a phone-sized window (360 CSS pixels, Debian's chromium, JavaScript
off): a chart keeps lettering a person can read (at least 9 CSS pixels) and scrolls in its
own box, rather than shrinking to the width of the screen, and the page itself never
scrolls sideways. Screenshot: ``tests/output/screenshots/reports-narrow.png``."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import chromium, need_chromium, shot, signed_in
from support.pki import TestCA
from support.register import accepted, record
from support.web import MANAGER, STAFF, make_site, served

pytestmark = pytest.mark.slow
NARROW = 360
# The height of a chart's smallest lettering, as drawn: getBoundingClientRect of each text.
SMALLEST_TEXT = """() => Math.min(...[...document.querySelectorAll('svg.chart text')]
    .map(t => t.getBoundingClientRect().height).filter(h => h > 0))"""


async def test_charts_stay_legible_on_a_narrow_window(tmp_path: Path, ca: TestCA) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    tagged = {"consent": "obtained", "family": "F-1", "external": True}
    record(site.console.register, accepted("Q1", site.clock(), disclosure=tagged, staff=STAFF))
    async with served(site) as url, chromium() as browser:
        page = await signed_in(browser, url, MANAGER, viewport={"width": NARROW, "height": 740})
        await page.goto("/reports")
        assert await page.locator("svg.chart").count() >= 4
        assert await page.evaluate(SMALLEST_TEXT) >= 9
        assert await page.evaluate("document.documentElement.scrollWidth") <= NARROW
        figure = page.locator("#report-disclosures figure")
        scroll = await figure.evaluate("f => [f.scrollWidth, f.clientWidth]")
        assert scroll[0] > scroll[1]  # the chart scrolls in its own box
        await shot(page, "reports-narrow")
        # Printed on A4, a chart is never wider than the page.
        await page.set_viewport_size({"width": 794, "height": 1123})
        await page.emulate_media(media="print")
        box = await page.locator("svg#chart-disclosures").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 794
        await page.context.close()
