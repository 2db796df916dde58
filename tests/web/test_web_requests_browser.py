"""Requests received, the family report's client copy and the policy page in a real browser
(Debian's chromium, JavaScript off), over the console served by uvicorn on port 0 and a
real register in a real SQLite file.

- Policy, "Inter-agency working": a staff member records a phone request with the "Record a
  request" form (a wrong contact reference is refused with the reason, what was typed is
  kept); the manager reads it on its entry page with the message that answered it.
- Policy, "Client files": the manager marks an entry as third-party information on its
  entry page and presses the family report's client-copy button: the copy withholds that
  entry and the safeguarding one (none of their subjects, reasons, recipients or file
  names) and counts them; the downloaded text is the same.
- The policy page shows the policy word for word, line by line, with both clauses the
  reports quote.

Screenshots: ``tests/output/screenshots/requests-*.png``, ``client-copy-*.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.browser import chromium, need_chromium, press, shot, signed_in
from support.pki import TestCA
from support.register import accepted, message, record
from support.web import MANAGER, STAFF, Site, make_site, served

from gateway.register import client_copy, requests
from gateway.register.criteria import Filters
from gateway.settings.policy import SHIPPED_FILE

pytestmark = pytest.mark.slow
FAMILY = "F-1042"
# Only the withheld entries hold these: none may reach the family.
WITHHELD_WORDS = (
    "Statement of Lee Brown",
    "Risk from Mr Brown",
    "lee.brown@police.example",
    "Police Station",
    "brown-statement.pdf",
    "Referral about the children",
    "duty@council.example",
    "referral-form.pdf",
)


def sent(site: Site, n: int, to: str, org: str, subject: str, file: str, **d: object) -> None:
    record(
        site.console.register,
        accepted(
            f"Q{n}",
            site.clock.now - 86400 + n,
            rcpts=(to,),
            content=message(subject=subject, name=file),
            recipients={to: {"organisation": org, "display_name": "A Person"}},
            disclosure={"family": FAMILY, "external": True, "consent": "obtained", **d},
            staff=STAFF,
        ),
    )


async def test_inter_agency_working_the_request_form_records_a_phone_request(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    async with served(site) as url, chromium() as browser:
        staff = await signed_in(browser, url, STAFF, "/held", accept_downloads=True)
        await press(staff, "Record a request", "link")
        assert await staff.get_by_role("heading", level=1).inner_text() == (
            "Record a request for information"
        )
        assert requests.CLAUSE in await staff.locator("main").inner_text()
        await staff.get_by_label("Who made the request (agency or person)").fill(
            "Jo Bloggs, Cafcass"
        )
        await staff.get_by_label("Their contact reference").fill("C-404")
        await staff.get_by_label("By phone").check()
        await staff.get_by_label("Date received").fill("2026-01-05")
        await staff.get_by_label("What information they asked for").fill("Contact notes")
        await staff.get_by_label("Family reference").fill(FAMILY)
        await press(staff, "Record the request")
        assert await staff.locator("#request-error").inner_text() == (
            "there is no contact C-404 (C-NNN)"
        )
        assert await staff.get_by_label("Family reference").input_value() == FAMILY
        await shot(staff, "requests-01-form-refused")
        await staff.get_by_label("Their contact reference").fill("")
        await press(staff, "Record the request")
        assert staff.url.endswith("/requests/new")
        done = await staff.get_by_role("status").inner_text()
        found = re.fullmatch(
            r"Recorded request (\d+)\. Put \[request:\1\] in the subject of the message "
            r"that answers it\.",
            done,
        )
        assert found is not None, done
        n = int(found.group(1))
        await shot(staff, "requests-02-recorded")

        [asked] = [r for r in site.console.register.records() if r.kind == "request"]
        assert (asked.seq, asked.staff, asked.nature, asked.family) == (
            n,
            STAFF,
            "Contact notes",
            FAMILY,
        )
        assert (asked.data["requester"], asked.data["via"], asked.data["received"]) == (
            "Jo Bloggs, Cafcass",
            "phone",
            "2026-01-05",
        )
        sent(site, 2, "j.smith@cafcass.example", "Cafcass", "Contact notes", "n.pdf", request=n)
        [answer] = [r for r in site.console.register.records() if r.kind == "accepted"]

        manager = await signed_in(browser, url, MANAGER, "/register", accept_downloads=True)
        await manager.goto(f"/register/entry/{n}")
        details = await manager.locator("#request-details").inner_text()
        for words in ("Jo Bloggs, Cafcass", "by phone", "2026-01-05", "Contact notes", STAFF):
            assert words in details, words
        assert await manager.locator("#request-answers").inner_text() == f"entry {answer.seq}"
        await shot(manager, "requests-03-entry")
        await press(manager, f"entry {answer.seq}", "link")
        assert await manager.locator("#answers-request").inner_text() == f"request {n}"


async def test_client_files_the_client_copy_button_withholds_third_party_information(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    sent(site, 1, "j.smith@cafcass.example", "Cafcass North", "Contact report", "report.pdf")
    sent(
        site,
        2,
        "lee.brown@police.example",
        "Police Station",
        "Statement of Lee Brown",
        "brown-statement.pdf",
        consent="refused",
        reason="Risk from Mr Brown",
    )
    sent(
        site,
        3,
        "duty@council.example",
        "",
        "Referral about the children",
        "referral-form.pdf",
        safeguarding=True,
    )
    async with served(site) as url, chromium() as browser:
        manager = await signed_in(browser, url, MANAGER, "/register", accept_downloads=True)
        # Entry 2 came from another person: the manager says so on its entry page.
        await manager.goto("/register/entry/2")
        assert await manager.locator("#third-party").inner_text() == "no"
        await manager.get_by_label("About or from another person: withhold").check()
        async with manager.expect_navigation():
            await (
                manager.get_by_role("form", name="Third-party information")
                .get_by_role("button", name="Record")
                .click()
            )
        assert await manager.locator("#third-party").inner_text() == "yes"
        # Of entry 1, only the subject names another person.
        await manager.goto("/register/entry/1")
        await manager.get_by_label("subject", exact=True).check()
        async with manager.expect_navigation():
            await (
                manager.get_by_role("form", name="Third-party information")
                .get_by_role("button", name="Record")
                .click()
            )
        assert await manager.get_by_label("subject", exact=True).is_checked()

        await manager.goto("/register/report")
        await manager.get_by_label("Family reference").fill(FAMILY)
        await press(manager, "Show the report")
        full = await manager.locator("main").inner_text()
        assert "Statement of Lee Brown" in full and requests.CLAUSE in full
        await shot(manager, "client-copy-01-full-report")
        await press(manager, "Client copy (third-party information withheld)")
        assert urlsplit(manager.url).path == "/register/report/client-copy"
        copy = await manager.locator("#client-copy").inner_text()
        for words in WITHHELD_WORDS:
            assert words not in copy, words
        assert (
            "3 record(s), 2 entries withheld (information about another person); parts of 1 "
            "other entry withheld." in copy
        )
        assert "Contact report" not in copy and f"  What:     {client_copy.WITHHELD}" in copy
        assert client_copy.CLAUSE in copy
        assert copy.count(client_copy.WITHHELD) == 3
        assert "  To:       Cafcass North" in copy and "j.smith@" not in copy
        await shot(manager, "client-copy-02-copy")

        async with manager.expect_download() as info:
            await manager.get_by_role("link", name="Download as text").click()
        download = await info.value
        data = Path(await download.path()).read_bytes()
        records = site.console.register.records(Filters(family=FAMILY))
        expected = client_copy.client_copy_text(FAMILY, records, site.clock.now)
        assert data == expected.encode()  # the CLI's text, byte for byte
        assert copy.strip() == expected.strip()


async def test_the_policy_page_shows_the_policy_word_for_word_with_the_quoted_clauses(
    tmp_path: Path, ca: TestCA
) -> None:
    need_chromium()
    site = make_site(tmp_path / "gw", ca)
    shipped = SHIPPED_FILE.read_text(encoding="utf-8")
    async with served(site) as url, chromium() as browser:
        staff = await signed_in(browser, url, STAFF, "/held", accept_downloads=True)
        await press(staff, "Confidentiality policy", "link")
        shown = await staff.locator("#policy-text").inner_text()
        assert [ln.strip() for ln in shown.strip().splitlines()] == [
            ln.strip() for ln in shipped.strip().splitlines()
        ]
        words = " ".join(shown.split())
        for clause in (client_copy.CLAUSE, requests.CLAUSE):
            assert clause.split(': "', 1)[1].rstrip('"') in words
        await shot(staff, "requests-04-policy-page")
