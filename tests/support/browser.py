"""Debian's chromium driven by Playwright, for the review console's browser tests.

Never ``playwright install``: the browser is the distribution's (``apt-get install
chromium``, done by ``.ci/run``). Pages are loaded with JavaScript off, because the
console must work without it. Screenshots go to ``tests/output/screenshots/``
(git-ignored) for a reviewer to look at.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright

from support.web import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    need_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def context(browser: Browser, base_url: str, **kw: object) -> BrowserContext:
    """A fresh profile with JavaScript off (the console needs none)."""
    options: dict[str, object] = {
        "base_url": base_url,
        "java_script_enabled": False,
        "viewport": {"width": 1280, "height": 900},
        **kw,
    }
    return await browser.new_context(**options)  # type: ignore[arg-type]


async def sign_in(page: Page, login: str, password: str = PASSWORD, landing: str = "") -> None:
    """Sign in through the form, as a person would; ``landing``: the page it must land on."""
    await page.goto("/signin")
    await page.get_by_label("Login (your mail address)").fill(login)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    if landing:
        assert page.url.endswith(landing), page.url


async def signed_in(
    browser: Browser, url: str, login: str, landing: str = "", **kw: object
) -> Page:
    """A page in a fresh profile (``kw``: :func:`context` options), signed in as ``login``."""
    page = await (await context(browser, url, **kw)).new_page()
    await sign_in(page, login, landing=landing)
    return page


async def follow(target: Locator) -> None:
    """Click a button or link that loads a page, and wait for that page: reading the old
    one in between would race the browser."""
    async with target.page.expect_navigation():
        await target.click()


async def press(page: Page, name: str, role: str = "button") -> None:
    """:func:`follow` the button (or ``role``) called ``name``."""
    await follow(page.get_by_role(role, name=name))  # type: ignore[arg-type]


async def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path
