"""Second factor self-service in a real browser (Debian's chromium, JavaScript off): the
one-time link from `c4f-gateway web enrol-link`, the password, the QR code page, a code
computed from the key shown on it, then sign-in with the new second factor. Screenshots
go to ``tests/output/screenshots/``."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from support.browser import chromium, context, need_chromium, press, shot
from support.pki import TestCA
from support.subprocess_gateway import run_cli
from support.web import MANAGER, PASSWORD, admin_actions, make_site, served

from gateway.settings.web import WebSettings

pytestmark = pytest.mark.slow


async def test_enrolment_through_the_one_time_link(tmp_path: Path, ca: TestCA) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca, web=WebSettings())  # managers need a second factor
    async with served(site) as base:
        done = run_cli(
            "web", "enrol-link", MANAGER, "--config", site.settings.source, "--by", "it-admin"
        )
        assert done.returncode == 0, done.stderr
        link = next(w for w in done.stdout.split() if "/enrol/" in w)
        path = "/enrol/" + link.split("/enrol/", 1)[1]
        async with chromium() as browser:
            ctx = await context(browser, base)
            page = await ctx.new_page()
            await page.goto(path)
            assert await page.locator("#enrol-login").inner_text() == MANAGER
            await page.get_by_label("Password").fill(PASSWORD)
            await press(page, "Continue")
            qr = page.locator("#enrol-qr svg")
            assert await qr.count() == 1
            box = await qr.bounding_box()
            assert box is not None and box.get("width", 0) >= 120
            key = (await page.locator("#enrol-key").inner_text()).replace(" ", "")
            await shot(page, "enrol-qr-code")
            code = pyotp.TOTP(key).at(site.clock())
            await page.get_by_label("The 6-digit code from your authenticator app").fill(code)
            await press(page, "Confirm")
            assert "is active" in await page.locator("#enrol-done").inner_text()
            await shot(page, "enrol-done")

            # The link is spent; the new second factor signs in.
            await page.goto(path)
            assert "used or expired" in await page.locator("#enrol-gone").inner_text()
            site.clock.advance(30)
            await page.goto("/signin")
            await page.fill("#login", MANAGER)
            await page.fill("#password", PASSWORD)
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert page.url.endswith("/signin/code"), page.url
            await page.fill("#code", pyotp.TOTP(key).at(site.clock()))
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert page.url.endswith("/register"), page.url
            await ctx.close()
    assert site.console.totp.enrolled(MANAGER)
    actions = [(a, b) for a, b, _ in admin_actions(site)]
    assert actions.index(("it-admin", "totp enrolment link")) < actions.index(
        (MANAGER, "totp enrolled")
    )
