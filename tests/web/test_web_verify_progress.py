"""The console's "Verify now" shows that a verification is running and how far it got,
refreshing itself without JavaScript, then the result (issue 15).

To catch the check while it runs, the register's checkpoint file is replaced by a named
pipe: the check walks the whole chain, then waits, for real, until the test writes the
checkpoint's bytes into the pipe. Nothing of the console is replaced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.browser import chromium, context, need_chromium, shot
from support.pki import TestCA
from support.register import accepted
from support.web import MANAGER, PASSWORD, Site, make_site, signed_in

from gateway.web.app import create_app
from gateway.web.server import ConsoleServer

ENTRIES = 600


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    reg = site.console.register
    with site.store.transaction() as conn:
        for i in range(ENTRIES):
            reg.accepted(conn, accepted(f"Q{i + 1}", site.clock() - 86400 + i))
    reg.checkpoint()
    return site


def _hold_checkpoint(site: Site) -> tuple[Path, bytes]:
    """Put a named pipe where the checkpoint was: the next check waits on it."""
    [path] = site.console.register.checkpoint_dir.glob("head-*.json")
    content = path.read_bytes()
    path.unlink()
    os.mkfifo(path)
    return path, content


def _release(path: Path, content: bytes) -> None:
    """Hand the waiting check its checkpoint (blocks until the check opens the pipe)."""
    with path.open("wb") as pipe:
        pipe.write(content)


def _unblock(path: Path) -> None:
    """After a failed test: end a check still waiting on the pipe (it reads nothing)."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_verify_now_shows_the_running_check_then_its_result(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        path, content = _hold_checkpoint(site)
        n = _count(site)  # the entries, and the sign-in's own entry in the admin trail
        try:
            _while_held(client, csrf, path, content, n)
        finally:
            _unblock(path)
        page = client.get("/register").text
        assert f"Register verified: {n} entries, chain intact." in page
        # Nothing runs now: the progress page sends the reader back to the register.
        assert client.get("/register/verify", follow_redirects=False).status_code == 303


def _count(site: Site) -> int:
    return int(site.store.query("SELECT count(*) FROM register")[0][0])


def _while_held(client: TestClient, csrf: str, path: Path, content: bytes, n: int) -> None:
    started = time.monotonic()
    reply = client.post("/register/verify", data={"csrf": csrf}, follow_redirects=False)
    assert (reply.status_code, reply.headers["location"]) == (303, "/register/verify")
    assert time.monotonic() - started < 10  # it did not wait for the end

    running = client.get("/register/verify")
    assert running.status_code == 200
    html = running.text
    assert '<meta http-equiv="refresh" content="2">' in html
    assert f"{n} of {n} entries checked (100%)" in html
    assert f'<progress max="{n}" value="{n}"' in html
    # The refresh is a plain meta element: the policy still forbids every script.
    csp = running.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in html
    # A second "Verify now" joins the running check rather than starting another.
    again = client.post("/register/verify", data={"csrf": csrf}, follow_redirects=False)
    assert again.headers["location"] == "/register/verify"

    _release(path, content)
    for _ in range(100):
        done = client.get("/register/verify", follow_redirects=False)
        if done.status_code == 303:
            break
        time.sleep(0.1)
    assert (done.status_code, done.headers["location"]) == (303, "/register")


def test_a_quick_check_answers_at_once(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        reply = client.post("/register/verify", data={"csrf": csrf}, follow_redirects=False)
        assert (reply.status_code, reply.headers["location"]) == (303, "/register")
        assert f"Register verified: {_count(site)} entries" in client.get("/register").text


@pytest.mark.slow
async def test_the_progress_page_refreshes_itself_in_a_browser(site: Site) -> None:
    """In chromium with JavaScript off, under the console's CSP: the page shows the
    running check, then reloads by itself onto the register and its result."""
    need_chromium()
    server = ConsoleServer(
        create_app(site.console), site.settings, https=False, host="127.0.0.1", port=0
    )
    await server.start()
    held: Path | None = None
    try:
        async with chromium() as browser:
            ctx = await context(browser, server.url)
            page = await ctx.new_page()
            await page.goto("/signin")
            await page.fill("#login", MANAGER)
            await page.fill("#password", PASSWORD)
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert page.url.endswith("/register"), page.url
            path, content = await asyncio.to_thread(_hold_checkpoint, site)
            held = path
            n = _count(site)
            async with page.expect_navigation():
                await page.get_by_role("button", name="Verify now").click()
            assert page.url.endswith("/register/verify"), page.url
            status = await page.locator("#verify-progress").inner_text()
            assert re.match(rf"{n} of {n} entries checked \(100%\)", status), status
            assert await page.locator("progress").get_attribute("value") == str(n)
            await shot(page, "register-verify-running")

            await asyncio.to_thread(_release, path, content)
            # No click: the page's own refresh brings the result.
            await page.wait_for_url(re.compile(r"/register$"), timeout=15000)
            flash = await page.locator("p.flash").inner_text()
            assert flash == f"Register verified: {n} entries, chain intact."
            await shot(page, "register-verify-done")
            await ctx.close()
    finally:
        if held is not None:
            _unblock(held)
        await server.stop()
