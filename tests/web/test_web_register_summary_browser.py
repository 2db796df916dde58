"""A manager chooses a period on the register list and reads it at a glance, in a real
browser (Debian's chromium, JavaScript off; the console served by uvicorn on port 0 over
a real database). Screenshot: ``tests/output/screenshots/register-summary-strip.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import chromium, need_chromium, shot, signed_in
from support.pki import TestCA
from support.register_seed import at, seed
from support.web import ADMIN, make_site, served

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("london")]


async def test_the_strip_shows_the_chosen_periods_figures(tmp_path: Path, ca: TestCA) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    seed(site.console.register)
    site.console.register.checkpoint()
    site.clock.now = at("2026-11-20")
    async with served(site) as url, chromium() as browser:
        page = await signed_in(browser, url, ADMIN, landing="/register")
        await page.get_by_label("From (date)").fill("2026-10-01")
        await page.get_by_label("Up to and including").fill("2026-11-30")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Apply filter").click()
        strip = page.get_by_role("region", name="At a glance: 2026-10-01 to 2026-11-30")
        figures = {}
        for item in await strip.locator("div.figure").all():
            figures[await item.locator("dt").inner_text()] = await item.locator("dd").inner_text()
        assert figures == {
            "Accepted from staff": "8",  # Q2-Q7, Q10, Q12 (Q1 is September's)
            "Refused at the door": "1",
            "Held for approval now": "1",
            "Disclosures without consent": "3",
            "Incomplete records": "3",
            '"Person informed" outstanding': "2",
        }
        assert (await page.locator("#count").inner_text()).startswith("9 records match")
        await shot(page, "register-summary-strip")
