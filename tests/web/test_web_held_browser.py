"""Held messages in a real browser (Debian's chromium, JavaScript off), end to end.

A gateway with the chain sender, disclosure, approval, disclaimer relays to a recording TLS
upstream; the console runs on its database (test_web_browser.py's ``stack``). A staff
member sends two messages that are held; in the browser they withdraw one of them, then
their line manager opens the other, reads what it is, and approves it with a note. What
is asserted: that message reaches the upstream exactly once, with the confidentiality
notice, the withdrawn one never does, and the register entry shows the approval with the
manager and the note. Screenshots go to ``tests/output/screenshots/held-*.png``.
"""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import StartGateway
from support.browser import chromium, context, shot, sign_in
from support.delivery import until
from support.harness import PASSWORD as SMTP_PASSWORD
from support.held import PDF, arrived_for, html_message, send_held
from support.upstream import Upstream
from support.web import MANAGER, PASSWORD
from test_web_browser import stack

pytestmark = pytest.mark.slow

ALICE = "alice@c4f.example"  # staff; her line manager is MANAGER
CONTACT = "j.smith@cafcass.example"
CHAIN = ["sender", "disclosure", "approval", "disclaimer"]
NOTICE_START = b"This document is strictly confidential"  # the mandatory notice
NOTE = "Court order in place; discussed with the family's social worker"


async def test_staff_withdraws_one_manager_approves_the_other_which_leaves_once(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    async with stack(start_gateway, upstream, tmp_path, filters=CHAIN) as s:
        s.gw.add_staff(ALICE, managers=[MANAGER])
        approved = await send_held(
            s.gw, ALICE, [CONTACT], "[consent:refused] [reason:Risk of harm] Contact report"
        )
        withdrawn = await send_held(
            s.gw, ALICE, [CONTACT], "[consent:refused] [reason:Sent too soon] Draft notes"
        )

        async with chromium() as browser:
            # The sender: only her held messages; she withdraws the draft.
            ctx = await context(browser, s.url)
            page = await ctx.new_page()
            await sign_in(page, ALICE, SMTP_PASSWORD, "/held")
            nav = page.get_by_role("navigation", name="Main").get_by_role("link")
            assert await nav.all_inner_texts() == [
                "Held messages (2 waiting)",
                "Record a request",
                "Confidentiality policy",
            ]
            await shot(page, "held-01-staff-list")
            await page.get_by_role("link", name=withdrawn).click()
            assert "Draft notes" in await page.locator("main").inner_text()
            assert await page.get_by_role("button", name="Approve and send").count() == 0
            await page.get_by_role("button", name="Withdraw the message").click()
            assert page.url.endswith("/held")
            flash = await page.locator(".flash").inner_text()
            assert flash == f"Withdrew {withdrawn}: it will not be sent."
            reply = await page.goto("/register")
            assert reply is not None and reply.status == 403
            await ctx.close()

            # Her line manager: the list, the message, the approval with a note.
            ctx = await context(browser, s.url)
            page = await ctx.new_page()
            await sign_in(page, MANAGER, PASSWORD, "/register")
            await page.get_by_role("link", name="Held messages (1 waiting)").click()
            rows = page.locator("table.held tbody tr")
            assert await rows.count() == 1
            row = await rows.first.inner_text()
            assert ALICE in row and "consent refused" in row and f"{MANAGER} or an admin" in row
            await shot(page, "held-02-manager-list")
            await page.get_by_role("link", name=approved).click()
            main = await page.locator("main").inner_text()
            assert "Contact report" in main and "Risk of harm" in main and CONTACT in main
            # 200% zoom (half the CSS width): only the tables' own boxes may scroll sideways.
            await page.set_viewport_size({"width": 640, "height": 900})
            for path in ("/held", f"/held/{approved}"):
                await page.goto(path)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 640, (path, width)
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.get_by_label("Note (required)").fill(NOTE)
            await shot(page, "held-03-message")
            await page.get_by_role("button", name="Approve and send").click()
            s.gw.gateway.worker.wake()  # rather than wait for the worker's poll
            assert page.url.endswith("/held")
            assert (await page.locator(".flash").inner_text()).startswith(f"Approved {approved}")
            assert await page.locator("#none-held").is_visible()
            await shot(page, "held-04-approved")

            await until(lambda: arrived_for(upstream.arrived, CONTACT))
            await asyncio.sleep(0.5)  # time enough for a duplicate to show up
            [sent] = arrived_for(upstream.arrived, CONTACT)
            assert sent.content.count(NOTICE_START) == 1
            subject = message_from_bytes(sent.content, policy=policy.default)["Subject"]
            assert subject == "Contact report"

            records = await asyncio.to_thread(s.register.records)
            [entry] = [r.seq for r in records if r.entry.queue_id == approved]
            await page.goto(f"/register/entry/{entry}")
            followups = await page.locator("ol.followups").inner_text()
            assert re.search(
                rf"approved for sending by {re.escape(MANAGER)}; note: {re.escape(NOTE)}",
                followups,
            ), followups
            await shot(page, "held-05-register-entry")
            await ctx.close()

        [gone] = [r for r in records if r.entry.queue_id == withdrawn]
        assert gone.approval == "withdrawn" and gone.approval_steps[-1]["by"] == ALICE
        # The withdrawn message never left (only its sender's own notice names it).
        assert arrived_for(upstream.arrived, CONTACT) == [sent]
        assert [
            a for a in upstream.arrived if b"Draft notes" in a.content and a.rcpt_tos != [ALICE]
        ] == []


async def test_approver_reads_the_text_as_text_and_downloads_the_attachment(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    """An HTML-only held message: its text is shown as text (an ``<img onerror>`` in the
    message is neither an element nor run; a script's text is left out), its attachment is
    a download with the exact bytes, and the reading is in the register's admin trail."""

    from gateway.register.criteria import Filters

    async with stack(start_gateway, upstream, tmp_path, filters=CHAIN) as s:
        s.gw.add_staff(ALICE, managers=[MANAGER])
        msg = html_message(ALICE, CONTACT)
        errors, reply = await s.gw.send(ALICE, [str(msg["To"])], msg)
        assert errors == {} and "held for approval" in reply
        qid = reply.split("Queued as ")[1].split(",")[0].split()[0]

        async with chromium() as browser:
            ctx = await context(browser, s.url, accept_downloads=True)
            page = await ctx.new_page()
            await sign_in(page, MANAGER, PASSWORD, "/register")
            await page.goto(f"/held/{qid}")
            title = await page.title()
            text = await page.locator("pre.message-text").inner_text()
            assert "Notes for the court & the family's social worker." in text
            assert "Shown as text: <img src=x onerror=alert(2)>" in text
            assert "script text" not in text
            assert await page.locator("main img").count() == 0
            assert await page.title() == title  # nothing in the message ran
            await shot(page, "held-06-message-text")
            async with page.expect_download() as waiting:
                await page.get_by_role("link", name="bundle.pdf").click()
            download = await waiting.value
            path = await download.path()
            assert path is not None and Path(path).read_bytes() == PDF
            assert download.suggested_filename == "bundle.pdf"
            await ctx.close()

        records = await asyncio.to_thread(s.register.records, Filters(kinds=("admin",)))
        reads = [r.data["details"] for r in records if r.data["action"] == "held message read"]
        assert reads == [
            {"queue_id": qid, "read": "text"},
            {"queue_id": qid, "read": "attachment 1"},
        ]


async def test_staff_complete_their_own_untagged_message_which_then_leaves_once(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    """A member of staff forgot [consent:obtained]: they record it in the console, the
    message leaves once and the register shows who completed it. A safeguarding message
    stays held whatever is completed: a line manager decides."""
    async with stack(start_gateway, upstream, tmp_path, filters=CHAIN) as s:
        s.gw.add_staff(ALICE, managers=[MANAGER])
        forgot = await send_held(s.gw, ALICE, [CONTACT], "Contact report for Saturday")
        flagged = await send_held(s.gw, ALICE, [CONTACT], "[safeguarding] Concern")

        async with chromium() as browser:
            ctx = await context(browser, s.url)
            page = await ctx.new_page()
            await sign_in(page, ALICE, SMTP_PASSWORD, "/held")
            await page.goto(f"/held/{forgot}")
            await page.get_by_label("consent obtained").check()
            await page.get_by_label("Family reference").fill("F-1042")
            await shot(page, "held-07-complete-details")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Record the details").click()
            flash = await page.locator(".flash").inner_text()
            assert flash == f"Recorded: {forgot} no longer needs approval and is sent now."

            await page.goto(f"/held/{flagged}")
            await page.get_by_label("consent obtained").check()
            async with page.expect_navigation():
                await page.get_by_role("button", name="Record the details").click()
            flash = await page.locator(".flash").inner_text()
            assert flash.startswith("Still held (flagged safeguarding): a line manager decides")
            await ctx.close()

        s.gw.gateway.worker.wake()
        await until(lambda: arrived_for(upstream.arrived, CONTACT))
        await asyncio.sleep(0.5)  # time enough for a duplicate, or the flagged one, to show up
        [sent] = arrived_for(upstream.arrived, CONTACT)
        assert b"Contact report for Saturday" in sent.content
        assert sent.content.count(NOTICE_START) == 1
        records = await asyncio.to_thread(s.register.records)
        [done] = [r for r in records if r.entry.queue_id == forgot]
        assert (done.consent, done.family, done.complete, done.approval) == (
            "obtained",
            "F-1042",
            True,
            "completed",
        )
        assert done.approval_steps[-1]["by"] == ALICE
        [still] = [r for r in records if r.entry.queue_id == flagged]
        assert still.approval == "held" and still.consent == "not-recorded"
        assert s.register.verify().ok  # a decision (the completion) precedes the delivery
