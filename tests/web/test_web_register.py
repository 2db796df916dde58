"""Disclosure log review in the console: filters, entry pages, follow-up forms, CSV,
the family report and the verify banner, checked against the CLI's own output.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.register import accepted, record, refused
from support.web import ADMIN, MANAGER, Site, add_account, make_site, signed_in

from gateway.cli import main
from gateway.register.criteria import Filters
from gateway.register.record import Record

ALICE = "alice@c4f.example"  # the sender of support.register's entries
BOB = "bob@c4f.example"


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    # The senders report to MANAGER, who reads their entries ([web] manager_scope).
    for login in (ALICE, BOB):
        add_account(site.store, login, "staff", (MANAGER,))
    reg, now = site.console.register, site.clock()
    record(
        reg,
        accepted(
            "Q1",
            now - 3 * 86400,
            disclosure={"consent": "obtained", "family": "F-1042", "nature": "Contact notes"},
            recipients={"j.smith@cafcass.example": {"organisation": "Cafcass"}},
        ),
    )  # entry 1: complete
    record(reg, accepted("Q2", now - 2 * 86400, staff=BOB, rcpts=("k.lee@council.example",)))
    record(reg, refused("Q3", now - 86400))  # entry 3
    reg.checkpoint()  # as `serve` writes them: otherwise verify reports a missing checkpoint
    return site


def _entries(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/register/entry/(\d+)">', html)]


def _filter(client: TestClient, csrf: str, **fields: str) -> list[int]:
    reply = client.post("/register/filter", data={"csrf": csrf, **fields}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/register"
    return _entries(client.get("/register").text)


def test_filters_match_the_cli_and_stay_out_of_the_url(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        assert _entries(client.get("/register").text) == [3, 2, 1]  # newest first
        assert _filter(client, csrf, family="F-1042") == [1]
        assert _filter(client, csrf, staff=BOB) == [2]
        assert _filter(client, csrf, incomplete="1") == [2]
        assert _filter(client, csrf, refused="1") == [3]
        assert _filter(client, csrf, consent="obtained") == [1]
        assert _filter(client, csrf, organisation="cafcass") == [1]
        assert _filter(client, csrf, recipient="k.lee") == [2]
        day = site.clock() - 2 * 86400
        from datetime import datetime

        iso = datetime.fromtimestamp(day).date().isoformat()
        assert _filter(client, csrf, since=iso, until=iso) == [2]
        assert _filter(client, csrf, action="clear") == [3, 2, 1]
        # The filter is shown back in the form, and the page says how many match.
        client.post(
            "/register/filter", data={"csrf": csrf, "family": "F-1042", "retention_hold": "1"}
        )
        page = client.get("/register").text
        assert (
            'name="family" value="F-1042"' in page
            and 'name="retention_hold" type="checkbox" value="1" checked' in page
        )
        assert "0 records match" in page
        bad = client.post("/register/filter", data={"csrf": csrf, "since": "last week"})
        assert "Not a date (YYYY-MM-DD): since" in bad.text


def test_csv_export_is_the_cli_export_of_the_same_filter(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        client.post("/register/filter", data={"csrf": csrf, "incomplete": "1"})
        reply = client.get("/register/export.csv")
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"].startswith('attachment; filename="register-')
    assert reply.headers["cache-control"] == "no-store"
    config = str(site.settings.source)
    capsys.readouterr()
    assert main(["register", "export", "--incomplete", "--config", config]) == 0
    assert reply.text == capsys.readouterr().out
    assert reply.text.count("\r\n") == 2 and "k.lee@council.example" in reply.text
    trail = [r.data for r in _admin(site)]
    assert {"actor": MANAGER, "action": "register exported", "details": {"records": 1}} in trail


def _admin(site: Site) -> list[Record]:
    return site.console.register.records(Filters(kinds=("admin",)))


def test_follow_up_forms_add_entries_the_cli_shows(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        page = client.get("/register/entry/2").text
        assert "incomplete (consent missing)" in page
        post = lambda **d: client.post("/register/entry/2", data={"csrf": csrf, **d})  # noqa: E731
        done = post(action="details", consent="not-sought", reason="Court order", family="F-7")
        assert "Recorded follow-up" in done.text
        post(action="informed", informed="yes", on="2026-01-05")
        post(action="concern", concern="Address given by the father, check with Cafcass")
        no_reason = post(action="hold", category="legal")
        assert "a retention hold needs a category and a reason" in no_reason.text
        post(action="hold", category="legal", hold_reason="Solicitor asked", review_on="2027-06-01")
        page = client.get("/register/entry/2").text
        assert f"legal, own hold: Solicitor asked (set by {MANAGER} on " in page
        assert "review on 2027-06-01)" in page
        assert 'Record</dt><dd class="">complete' in page
        assert "Release the retention hold" in page
        empty = post(action="details")
        assert "nothing to record" in empty.text
        bad_date = post(action="informed", informed="yes", on="yesterday")
        assert "is not a date" in bad_date.text
        post(action="release", hold_reason="Matter closed")
        assert "Place a retention hold" in client.get("/register/entry/2").text
        # A follow-up's number leads to its original.
        moved = client.get("/register/entry/5", follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == "/register/entry/2"
        assert client.get("/register/entry/99").status_code == 404
    capsys.readouterr()
    assert main(["register", "show", "2", "--config", str(site.settings.source)]) == 0
    shown = capsys.readouterr().out
    assert "Consent:               not sought" in shown
    assert "Person informed:       yes on 2026-01-05" in shown
    assert f"follow-up by {MANAGER}: concern: Address given by the father" in shown
    assert f"follow-up by {MANAGER}: retention hold: yes" in shown
    assert f"follow-up by {MANAGER}: retention hold: no" in shown


def test_family_report_matches_the_cli_report(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        assert "Show the report" in client.get("/register/report").text
        client.post("/register/report", data={"csrf": csrf, "family": "F-1042"})
        page = client.get("/register/report").text
        assert (
            "Disclosures about family F-1042" in page
            and 'entry <a href="/register/entry/1">1</a>: sent' in page
        )
        text = client.get("/register/report.txt").text
    capsys.readouterr()
    assert (
        main(["register", "report", "--family", "F-1042", "--config", str(site.settings.source)])
        == 0
    )
    cli = capsys.readouterr().out
    strip = lambda s: [x for x in s.splitlines() if not x.startswith("Generated")]  # noqa: E731
    assert strip(text) == strip(cli)
    assert "j.smith@cafcass.example (Cafcass)" in text


def test_verify_banner_names_the_first_broken_entry(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        banner = _banner(client.get("/contacts").text)
        assert "Register verified" in banner and "3 entries, chain intact" in banner
        conn = sqlite3.connect(site.settings.storage.database, isolation_level=None)
        conn.execute("UPDATE register SET size = size + 1 WHERE seq = 2")
        conn.close()
        reply = client.post("/register/verify", data={"csrf": csrf})
        assert "REGISTER FAILED VERIFICATION: entry 2 was altered" in reply.text
        for path in ("/register", "/contacts", "/queue", "/register/report", "/staff"):
            banner = _banner(client.get(path).text)
            assert 'class="verify bad"' in banner and "entry 2 was altered" in banner, path
    # The same finding as the CLI's.
    assert main(["register", "verify", "--config", str(site.settings.source)]) == 1


def test_reg12_banner_counts_entries_not_yet_checkpointed(site: Site) -> None:
    """The console says what `register verify` says: entries written since the newest
    checkpoint are named, as a cut-off tail among them would go unseen. (With no
    checkpoint at all the banner is not green: REG-11 in test_web_browser.py.)"""
    config = str(site.settings.source)
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        assert main(["register", "checkpoint", "--config", config]) == 0
        client.post("/register/verify", data={"csrf": csrf})
        banner = _banner(client.get("/contacts").text)
        assert 'class="verify ok"' in banner and "chain intact" in banner
        assert "checkpoint" not in banner.lower()
    with site.client() as client:
        csrf = signed_in(client, ADMIN)  # the sign-in is an entry of the admin trail
        client.post("/register/verify", data={"csrf": csrf})
        banner = _banner(client.get("/contacts").text)
        assert 'class="verify ok"' in banner and "Not yet checkpointed: 1 entry." in banner


def _banner(html: str) -> str:
    found = re.search(r'<div class="verify.*?</div>', html, re.S)
    assert found is not None
    return found.group(0)


def test_manager_sees_entry_details_and_admin_actions_are_apart(site: Site) -> None:
    with site.client() as client:
        signed_in(client, MANAGER)
        page = client.get("/register/entry/1").text
        for shown in ("j.smith@cafcass.example (Cafcass)", "obtained", "F-1042", "Contact notes"):
            assert shown in page
        assert _entries(client.get("/register").text) == [3, 2, 1]  # sign-ins are not listed
    with site.client() as client:
        signed_in(client, ADMIN)
        trail = client.get("/register/admin").text
        assert trail.count("console sign-in") == 2
