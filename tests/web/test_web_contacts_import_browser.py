"""The console's contacts import in a real browser (Debian's chromium, JavaScript off): an
edited export previewed as adds, updates and unchanged rows, then applied. Screenshots go
to ``tests/output/screenshots/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page
from support.browser import chromium, context, need_chromium, shot
from support.pki import TestCA
from support.web import ADMIN, PASSWORD, admin_actions, make_site

from gateway.directory.contact import Contact
from gateway.directory.contacts_csv import CSV_COLUMNS, export_csv
from gateway.web.app import create_app
from gateway.web.server import ConsoleServer

pytestmark = pytest.mark.slow


async def _sign_in(page: Page) -> None:
    await page.goto("/signin")
    await page.fill("#login", ADMIN)
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert page.url.endswith("/register"), page.url


async def test_import_preview_in_a_browser(tmp_path: Path, ca: TestCA) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    repo = site.console.contacts
    for address, org in (
        ("k.lee@council.example", "Council"),
        ("j.smith@cafcass.example", "Cafcass"),
    ):
        repo.add(
            Contact(
                0,
                "address",
                address,
                "Kim Lee",
                org,
                "",
                "Ada",
                "2026-03-01",
                "phoned",
                "2027-03-01",
            ),
            ADMIN,
        )
    edited = export_csv(repo).replace(",Council,", ",County Council,") + (
        "address,new@council.example,New Person,Council,,Ada,2026-03-01,phoned,,,,,,\r\n"
    )
    before = repo.all()
    server = ConsoleServer(
        create_app(site.console), site.settings, https=False, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        async with chromium() as browser:
            ctx = await context(browser, server.url)
            page = await ctx.new_page()
            await _sign_in(page)
            trail = admin_actions(site)  # the sign-in is in it
            await page.goto("/contacts/import")
            assert await page.locator("#import-columns tbody tr").count() == len(CSV_COLUMNS)
            await shot(page, "contacts-import-columns")
            await page.fill("#csv_text", edited)
            async with page.expect_navigation():
                await page.click("text=Preview the import")
            summary = await page.inner_text("#preview-summary")
            assert summary == "3 row(s): 1 to add, 1 to update, 1 unchanged, 0 with problems."
            classes = [
                await row.get_attribute("class")
                for row in await page.locator("#preview-rows tbody tr").all()
            ]
            assert classes == ["update", "unchanged", "add"]
            assert "organisation: “Council” → “County Council”" in await page.inner_text(
                "#preview-rows"
            )
            await shot(page, "contacts-import-preview")
            assert (repo.all(), admin_actions(site)) == (before, trail)  # nothing written yet
            async with page.expect_navigation():
                await page.click("text=Add 1 and update 1 contact(s)")
            assert page.url.endswith("/contacts"), page.url
            assert "Imported: 1 new, 1 updated, 1 unchanged." in await page.content()
            await ctx.close()
    finally:
        await server.stop()
    try:
        assert [c.organisation for c in repo.all()] == ["County Council", "Cafcass", "Council"]
        assert [(a, d["contact_id"]) for a, _, d in admin_actions(site)[len(trail) :]] == [
            (ADMIN, 1),  # one register entry per changed contact, none for the unchanged one
            (ADMIN, 3),
        ]
    finally:
        site.console.close()
