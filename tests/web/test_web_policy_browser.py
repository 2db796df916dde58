"""The policy page and the overdue-review banner in a real browser (Debian's chromium,
JavaScript off). The console is served by uvicorn on port 0 over a real database; a staff
member and a manager each open the policy from the navigation. Once the console's clock
passes the review date by more than 12 months, the manager meets the banner on every page
and the staff member does not. Screenshots: ``tests/output/screenshots/policy-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page
from support.browser import chromium, need_chromium, shot, signed_in
from support.pki import TestCA
from support.web import MANAGER, STAFF, make_site, served

from gateway.settings.policy import SHIPPED_FILE
from gateway.settings.web import WebSettings

pytestmark = pytest.mark.slow
DAY = 86400.0
REVIEWED = 1_772_323_200.0  # 2026-03-01 00:00 UTC, the config's reviewed_on


async def _open_policy(page: Page) -> None:
    nav = page.get_by_role("navigation", name="Main")
    async with page.expect_navigation():
        await nav.get_by_role("link", name="Confidentiality policy").click()
    assert page.url.endswith("/policy"), page.url


async def test_policy_page_for_every_role_and_the_overdue_banner_for_managers(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(
        tmp_path / "gw",
        ca,
        config={"policy": {"version": "2025-1", "reviewed_on": "2026-03-01"}},
        web=WebSettings(require_totp=(), session_idle_timeout=400 * DAY, session_max_age=400 * DAY),
    )
    site.clock.now = REVIEWED + 200 * DAY  # reviewed seven months ago: nothing to say
    shipped = SHIPPED_FILE.read_text(encoding="utf-8")
    async with served(site) as url, chromium() as browser:
        staff = await signed_in(browser, url, STAFF, "/held")
        await _open_policy(staff)
        assert await staff.get_by_role("heading", level=1).inner_text() == (
            "Confidentiality policy"
        )
        assert await staff.locator("#policy-version").inner_text() == "2025-1"
        assert await staff.locator("#policy-reviewed").inner_text() == "2026-03-01"
        assert await staff.locator("#policy-due").inner_text() == "2027-03-01"
        text = await staff.locator("#policy-text").inner_text()
        assert text.split() == shipped.split()  # the whole text, word for word
        await shot(staff, "policy-01-staff-page")

        manager = await signed_in(browser, url, MANAGER, "/register")
        assert await manager.locator("#policy-review").count() == 0
        site.clock.now = REVIEWED + 367 * DAY  # 2027-03-03: more than 12 months
        await manager.reload()
        banner = manager.locator("#policy-review")
        assert " ".join((await banner.inner_text()).split()) == (
            "The confidentiality policy's annual review is overdue. Version 2025-1 was last "
            "reviewed on 2026-03-01 (due again 2027-03-01). Review it, then set "
            "[policy] reviewed_on and version in the gateway's config. Read the policy"
        )
        await shot(manager, "policy-02-manager-banner")
        async with manager.expect_navigation():
            await banner.get_by_role("link", name="Read the policy").click()
        assert await manager.locator("#policy-due").inner_text() == "2027-03-01 (overdue)"
        assert await manager.locator("#policy-review").count() == 1
        await shot(manager, "policy-03-manager-page-overdue")

        await staff.reload()
        assert await staff.locator("#policy-review").count() == 0
        assert await staff.locator("#policy-due").inner_text() == "2027-03-01 (overdue)"
