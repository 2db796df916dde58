"""A manager meets an overdue "person informed" on the console's front page and answers it,
in a real browser (Debian's chromium, JavaScript off; the console served by uvicorn on
port 0 over a real database). Screenshots: ``tests/output/screenshots/duties-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import chromium, follow, need_chromium, shot, signed_in
from support.pki import TestCA
from support.register import DAY, accepted, record
from support.web import MANAGER, add_account, make_site, served

pytestmark = pytest.mark.slow
ALICE = "alice@c4f.example"


async def test_manager_answers_an_overdue_person_informed_from_the_front_page(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    add_account(site.store, ALICE, "staff", (MANAGER,))
    without = {"consent": "not-sought", "reason": "Court direction", "external": True}
    record(site.console.register, accepted("Q1", site.clock() - 20 * DAY, disclosure=without))
    record(site.console.register, accepted("Q2", site.clock() - DAY, disclosure=without))
    site.console.register.checkpoint()
    async with served(site) as url, chromium() as browser:
        page = await signed_in(browser, url, MANAGER, landing="/register")

        duty = page.locator("#duty-informed")
        assert " ".join((await duty.inner_text()).split()) == (
            '1 disclosure without consent: "person informed" is overdue. Show them'
        )
        await shot(page, "duties-front-page")
        await follow(duty.get_by_role("button", name="Show them"))
        assert await page.get_by_label('"Person informed" overdue only').is_checked()
        rows = page.locator("table.register tbody tr")
        assert await rows.count() == 1
        assert "person informed due" in await rows.first.inner_text()
        await shot(page, "duties-inform-due-filter")

        await follow(rows.first.get_by_role("link"))
        form = page.get_by_role("group", name="Was the person informed?")
        await form.get_by_label("No, not informed").check()
        await follow(form.get_by_role("button", name="Record", exact=True))
        assert "not informed: give the reason why not" in await page.locator(".flash").inner_text()
        assert await form.get_by_label("No, not informed").is_checked()  # kept, as chosen
        await form.get_by_label("Why not, if not informed").fill("Father's address is unknown")
        await follow(form.get_by_role("button", name="Record", exact=True))
        assert "Recorded follow-up" in await page.locator(".flash").inner_text()
        await shot(page, "duties-answered")

        await page.goto("/register")
        assert await page.locator("#duty-informed").count() == 0
        assert await rows.count() == 0  # the filter still asks for overdue ones: none left
    answered = site.console.register.record(1)
    assert answered is not None
    assert (answered.informed, answered.informed_reason) == ("no", "Father's address is unknown")
