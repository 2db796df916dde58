"""A family retention hold from the family report page in a real browser (Debian's
chromium, JavaScript off), over the console served by uvicorn on port 0: the manager
chooses the family, places a child-protection hold with its reason, reads it on the page
and releases it again; at 200% zoom (640 CSS pixels) the form needs no sideways scrolling.

Screenshots: ``tests/output/screenshots/family-hold-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import chromium, need_chromium, press, shot, signed_in
from support.pki import TestCA
from support.register import accepted, record
from support.web import MANAGER, STAFF, make_site, served

from gateway.register.criteria import Filters
from gateway.register.family_hold import standing_hold

pytestmark = pytest.mark.slow
FAMILY = "F-1042"


async def test_a_manager_holds_and_releases_a_family_from_its_report(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    tagged = {"family": FAMILY, "consent": "obtained", "external": True}
    record(site.console.register, accepted("Q1", site.clock(), disclosure=tagged, staff=STAFF))
    async with served(site) as url, chromium() as browser:
        page = await signed_in(browser, url, MANAGER)
        await page.goto("/register/report")
        await page.get_by_label("Family reference").fill(FAMILY)
        await press(page, "Show the report")
        await page.get_by_label("Category").select_option("child-protection")
        await page.get_by_label("Reason").fill("Section 47 enquiry")
        await page.set_viewport_size({"width": 640, "height": 450})  # 200% of 1280
        overflow = await page.evaluate(
            "document.querySelector('#family-hold-reason').closest('form')"
            ".getBoundingClientRect().right - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        await shot(page, "family-hold-form-200pct")
        await page.set_viewport_size({"width": 1280, "height": 900})
        await press(page, "Place a retention hold on the family")
        held = standing_hold(site.console.register, FAMILY)
        assert held is not None and held.own_hold is not None
        assert (held.own_hold.category, held.own_hold.reason, held.own_hold.by) == (
            "child-protection",
            "Section 47 enquiry",
            MANAGER,
        )
        status = page.locator("p.flash")
        text = f"Family {FAMILY} is on a retention hold (child-protection): entry {held.seq}."
        assert (await status.inner_text()).strip() == text
        legend = page.locator("#h-family-hold").locator("xpath=..")
        assert "reason: Section 47 enquiry" in await legend.inner_text()
        await shot(page, "family-hold-placed")
        [kept] = site.console.register.records(Filters(family=FAMILY))
        assert kept.hold is not None and kept.hold.family_hold == held.seq

        await page.get_by_label("Why the hold is released").fill("Enquiry closed")
        await press(page, "Release the family's retention hold")
        assert "Released the retention hold on family F-1042" in await status.inner_text()
        assert await page.get_by_role("button", name="Place a retention hold on the family").count()
        await shot(page, "family-hold-released")
    assert standing_hold(site.console.register, FAMILY) is None
