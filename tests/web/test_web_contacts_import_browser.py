"""The console's contacts import in a real browser (Debian's chromium, JavaScript off): an
edited export previewed as adds, updates and unchanged rows, then applied. Screenshots go
to ``tests/output/screenshots/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import chromium, context, need_chromium, shot, sign_in
from support.pki import TestCA
from support.web import ADMIN, admin_actions, make_site, served

from gateway.directory.contact import Contact
from gateway.directory.contacts_csv import CSV_COLUMNS, export_csv

pytestmark = pytest.mark.slow


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
    async with served(site) as base, chromium() as browser:
        ctx = await context(browser, base)
        page = await ctx.new_page()
        await sign_in(page, ADMIN, landing="/register")
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
    try:
        assert [c.organisation for c in repo.all()] == ["County Council", "Cafcass", "Council"]
        assert [(a, d["contact_id"]) for a, _, d in admin_actions(site)[len(trail) :]] == [
            (ADMIN, 1),  # one register entry per changed contact, none for the unchanged one
            (ADMIN, 3),
        ]
    finally:
        site.console.close()
