"""The review console in a real browser (Debian's chromium, JavaScript off), end to end.

A gateway runs on port 0 with the register as its recorder, relaying to a recording
TLS upstream; the console is served by uvicorn on port 0 over the same database. The
tests sign in with a password and a TOTP code, filter the register, record a follow-up
and read it back with the CLI's ``register show``, add a contact and see the SMTP path
accept it, and check CSRF, roles and session expiry as a browser meets them (held
messages have their own browser test, test_web_held_browser.py). Each main
page is saved as a screenshot under ``tests/output/screenshots/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pyotp
import pytest
from conftest import StartGateway
from playwright.async_api import BrowserContext, Page
from support.browser import chromium, context, follow, need_chromium, shot
from support.harness import RunningGateway, message
from support.upstream import Upstream
from support.web import (
    ADMIN,
    MANAGER,
    PASSWORD,
    STAFF,
    Clock,
    FakeResolver,
    add_account,
)

from gateway.cli import main
from gateway.register.ledger import Register
from gateway.settings.register import RegisterSettings
from gateway.settings.web import WebSettings
from gateway.store import Store
from gateway.web.app import create_app
from gateway.web.console import Console
from gateway.web.server import ConsoleServer

CONTACT = "j.smith@cafcass.example"
pytestmark = pytest.mark.slow


@dataclass
class Stack:
    gw: RunningGateway
    console: Console
    clock: Clock
    url: str
    register: Register


@asynccontextmanager
async def stack(
    start_gateway: StartGateway,
    upstream: Upstream,
    tmp_path: Path,
    *,
    filters: list[str],
    web: WebSettings | None = None,
    deliver: bool = True,
) -> AsyncIterator[Stack]:
    need_chromium()
    folder = tmp_path / "gw"
    folder.mkdir()
    rs = RegisterSettings().resolved(folder)  # the paths `register_settings` will resolve
    Register.create_keys(rs)
    register = Register.from_settings(Store(folder / "gateway.db"), rs)
    gw = await start_gateway(
        upstream=upstream,
        folder=folder,
        recorder=register,
        config={"pipeline": {"filters": filters}},
        deliver=deliver,
    )
    clock = Clock()
    console = Console.open(
        gw.settings,
        web=web or WebSettings(require_totp=()),
        clock=clock,
        resolver=FakeResolver({"cafcass.example": ["10 mx.cafcass.example."]}),
    )
    for login, role in ((ADMIN, "admin"), (MANAGER, "manager"), (STAFF, "staff")):
        add_account(console.store, login, role)
    server = ConsoleServer(create_app(console), gw.settings, https=False, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield Stack(gw, console, clock, server.url, register)
    finally:
        await server.stop()
        console.close()


async def sign_in(page: Page, login: str, code: str = "") -> None:
    """By keyboard only: type, Tab to the next field, Enter to submit."""
    await page.goto("/signin")
    await page.focus("#login")
    await page.keyboard.type(login)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    if code:
        assert page.url.endswith("/signin/code"), page.url
        # The code field has autofocus, which Chromium applies just after the page loads.
        await page.wait_for_function("document.activeElement?.id === 'code'")
        await page.keyboard.type(code)
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
    assert page.url.endswith("/register"), page.url


async def _delivered(register: Register, count: int) -> None:
    for _ in range(200):
        records = await asyncio.to_thread(register.records)
        if len([r for r in records if r.status == "delivered"]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("messages were not delivered")


async def test_totp_sign_in_filter_and_annotate_seen_by_the_cli(
    start_gateway: StartGateway,
    upstream: Upstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with stack(
        start_gateway, upstream, tmp_path, filters=["sender", "disclosure"], web=WebSettings()
    ) as s:
        s.gw.add_staff("alice@c4f.example", managers=[MANAGER])  # whose register MANAGER reads
        for subject in (
            "[consent:obtained] [family:F-1042] Contact report",
            "[family:F-2001] Visit notes",  # consent not stated: incomplete
        ):
            msg = message("alice@c4f.example", [CONTACT], subject=subject)
            errors, _ = await s.gw.send("alice@c4f.example", [CONTACT], msg)
            assert errors == {}
        await _delivered(s.register, 2)
        config = str(s.gw.config_path)
        capsys.readouterr()
        assert main(["web", "totp-enrol", MANAGER, "--config", config]) == 0
        secret = capsys.readouterr().out.split("type the key by hand: ")[1].split(")")[0]

        async with chromium() as browser:
            ctx = await context(browser, s.url)
            page = await ctx.new_page()
            await page.goto("/register")
            assert page.url.endswith("/signin")
            await shot(page, "01-sign-in")
            code = pyotp.TOTP(secret).at(s.clock())
            await sign_in(page, MANAGER, code)
            # The banner shows the check made at start-up (an empty register then).
            assert "0 entries, chain intact" in await page.locator("#verify-status").inner_text()
            await follow(page.get_by_role("button", name="Verify now"))
            banner = await page.locator("#verify-status").inner_text()
            assert "Register verified" in banner and "entries, chain intact" in banner
            assert "0 entries" not in banner
            # REG-11: no checkpoint yet, so a cut-off tail would not show: not green.
            assert "No checkpoint: truncation cannot be detected." in banner
            assert await page.locator("#verify-status.warn").count() == 1
            flash = await page.locator(".flash.error").inner_text()
            assert flash.startswith("Register not verified: no checkpoint")
            rows = page.locator("table.register tbody tr")
            assert await rows.count() == 2
            await shot(page, "02-register")

            await page.get_by_label("Incomplete only").check()
            await follow(page.get_by_role("button", name="Apply filter"))
            assert page.url.endswith("/register")  # the filter is not in the URL
            assert await rows.count() == 1
            assert "F-2001" in await rows.first.inner_text()
            await follow(page.get_by_role("button", name="Clear"))
            await page.get_by_label("Family reference").fill("F-1042")
            await follow(page.get_by_role("button", name="Apply filter"))
            assert await rows.count() == 1
            text = await rows.first.inner_text()
            assert "F-1042" in text and "obtained" in text and "delivered" in text
            await shot(page, "03-register-filtered")

            await follow(rows.first.get_by_role("link"))
            entry = page.url.rsplit("/", 1)[1]
            await page.get_by_label("The concern, as discussed with the line manager").fill(
                "The report names the child's school; check with Cafcass."
            )
            await follow(page.get_by_role("button", name="Record the concern"))
            assert "Recorded follow-up" in await page.locator(".flash").inner_text()
            informed = page.get_by_role("group", name="Was the person informed?")
            await informed.get_by_label("Yes, informed").check()
            await informed.get_by_label("On (date)").fill("2026-01-05")
            await follow(informed.get_by_role("button", name="Record", exact=True))
            await shot(page, "04-entry-with-follow-ups")
            await ctx.close()

        capsys.readouterr()
        assert main(["register", "show", entry, "--config", config]) == 0
        shown = capsys.readouterr().out
        assert (
            f"follow-up by {MANAGER}: concern: The report names the child's school; "
            "check with Cafcass." in shown
        )
        assert "Person informed:       yes on 2026-01-05" in shown
        trail = await _trail(s)
        assert (MANAGER, "console sign-in", "totp") in trail


async def _trail(s: Stack) -> list[tuple[str, str, str]]:
    from gateway.register.criteria import Filters

    records = await asyncio.to_thread(s.register.records, Filters(kinds=("admin",)))
    return [
        (r.data["actor"], r.data["action"], r.data["details"].get("second_factor", ""))
        for r in records
    ]


async def _send(gw: RunningGateway, to: str) -> tuple[int, str]:
    client = await gw.client("alice@c4f.example")
    try:
        await client.mail("alice@c4f.example")
        try:
            await client.rcpt(to)
        except aiosmtplib.SMTPRecipientRefused as exc:
            return exc.code, exc.message
        reply = await client.data(message("alice@c4f.example", [to]).as_bytes())
        return reply.code, reply.message
    finally:
        client.close()


async def test_contact_added_in_the_browser_is_accepted_by_smtp(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    async with stack(
        start_gateway, upstream, tmp_path, filters=["sender", "fax_route", "contacts"]
    ) as s:
        s.gw.add_staff("alice@c4f.example")
        code, _ = await _send(s.gw, CONTACT)
        assert code == 550  # not approved yet (REL-2)
        await s.console.verifier.run_now()
        async with chromium() as browser:
            ctx = await context(browser, s.url)
            page = await ctx.new_page()
            await sign_in(page, ADMIN)
            await follow(page.get_by_role("link", name="Contacts"))
            await follow(page.get_by_role("link", name="Add a contact"))
            await page.get_by_label("Address (or domain), exactly as it will be used").fill(CONTACT)
            await page.get_by_label("Person's name").fill("Jo Smith")
            await page.get_by_label("Organisation or agency").fill("Cafcass")
            await page.get_by_label("How the address was verified").fill(
                "phoned back on the office number"
            )
            await shot(page, "05-contact-add")
            await follow(page.get_by_role("button", name="Add the contact"))
            assert "Added C-001" in await page.locator(".flash").inner_text()
            await shot(page, "06-contact")
            await follow(page.get_by_role("link", name="Back to the contacts"))
            await shot(page, "07-contacts")
            await ctx.close()
        code, reply = await _send(s.gw, CONTACT)
        assert code == 250, reply
        [arrived] = await upstream.wait_for(1)
        assert arrived.rcpt_tos == [CONTACT]


async def test_csrf_roles_and_expiry_in_the_browser(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    async with (
        stack(start_gateway, upstream, tmp_path, filters=["sender"]) as s,
        chromium() as browser,
    ):
        ctx: BrowserContext = await context(browser, s.url)
        page = await ctx.new_page()
        await sign_in(page, MANAGER)
        # A manager on an admin page.
        reply = await page.goto("/contacts")
        assert reply is not None and reply.status == 403
        assert await page.locator("h1").inner_text() == "Admins only"
        await shot(page, "08-manager-refused")
        # A POST with the session cookie but without the form's token.
        forged = await ctx.request.post(
            f"{s.url}/register/filter", form={"family": "F-1"}, max_redirects=0
        )
        assert forged.status == 403
        assert "form has expired" in await forged.text()
        # Idle past the timeout: the next click lands on the sign-in page.
        await page.goto("/register")
        assert page.url.endswith("/register")
        s.clock.advance(s.console.web.session_idle_timeout + 1)
        await page.reload()
        assert page.url.endswith("/signin")
        assert await page.locator("h1").inner_text() == "Sign in"
        # And a staff account gets only their own held messages.
        await page.fill("#login", STAFF)
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation():
            await page.press("#password", "Enter")
        assert page.url.endswith("/held")
        assert await page.locator("h1").inner_text() == "Held messages"
        reply = await page.goto("/register")
        assert reply is not None and reply.status == 403
        assert await page.locator("h1").inner_text() == "Line managers and admins only"
        await ctx.close()


async def test_queue_report_and_zoomed_pages(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    async with stack(
        start_gateway, upstream, tmp_path, filters=["sender", "disclosure"], deliver=False
    ) as s:
        s.gw.add_staff("alice@c4f.example")
        msg = message(
            "alice@c4f.example", [CONTACT], subject="[consent:obtained] [family:F-7] Notes"
        )
        await s.gw.send("alice@c4f.example", [CONTACT], msg)
        # Nothing is delivered here (deliver=False): both messages wait in the queue,
        # one of them after a failed attempt.
        s.console.spool.accept(
            queue_id="ABCDEF123456",
            staff="alice@c4f.example",
            peer="127.0.0.1",
            mail_from="alice@c4f.example",
            rcpt_tos=["nobody@nowhere.example"],
            content=b"Subject: private\r\n\r\nsecret body\r\n",
        )
        held = s.console.spool.load("ABCDEF123456")
        assert held is not None
        s.console.spool.finish(
            held,
            delivered=[],
            bounced=[],
            outcomes=[],
            retry_at=s.clock() + 600,
            error="451 4.4.1 upstream did not answer",
        )
        await s.console.verifier.run_now()  # the banner as a reviewer would see it
        async with chromium() as browser:
            ctx = await context(browser, s.url)
            page = await ctx.new_page()
            await sign_in(page, ADMIN)
            await page.goto("/queue")
            html = await page.content()
            assert "secret body" not in html and "private" not in html
            assert "451 4.4.1 upstream did not answer" in html
            assert await page.locator("table.queue tbody tr").count() == 2
            await shot(page, "09-queue")
            await page.goto("/register/report")
            await page.get_by_label("Family reference").fill("F-7")
            await follow(page.get_by_role("button", name="Show the report"))
            assert "Disclosures about family F-7" in await page.locator(".report h2").inner_text()
            await page.emulate_media(media="print")
            assert not await page.locator("header.top").is_visible()  # print: no navigation
            await shot(page, "10-family-report-print")
            await ctx.close()

            # 200% zoom: half the CSS width at twice the pixel density. Nothing but the
            # wide tables (in their own scroll boxes) may need sideways scrolling.
            zoomed = await context(
                browser, s.url, viewport={"width": 640, "height": 900}, device_scale_factor=2
            )
            page = await zoomed.new_page()
            await sign_in(page, ADMIN)
            for path in ("/register", "/register/entry/1", "/contacts/new", "/register/report"):
                await page.goto(path)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 640, (path, width)
                await shot(page, f"11-zoom-200-percent{path.replace('/', '-')}")
            await zoomed.close()
