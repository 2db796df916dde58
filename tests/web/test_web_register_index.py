"""The console's register list reads one page through the register's index: its rows and
count equal `c4f-gateway register list` for the same filters (a real subprocess), page by
page, and the strip above it shows the period's figures exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.register import accepted, record
from support.register_seed import CAFCASS, at, seed
from support.subprocess_gateway import run_cli
from support.web import ADMIN, MANAGER, Site, add_account, make_site, signed_in

from gateway.register.criteria import Filters
from gateway.register.scope import RegisterScope
from gateway.register.summary import summarise_records
from gateway.register.summary_formats import totals

BOB = "bob@c4f.example"  # sent Q2 of the seed; reports to MANAGER
EXTRA = 120  # enough for a second page (100 a page)


pytestmark = pytest.mark.usefixtures("london")


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    add_account(site.store, BOB, "staff", (MANAGER,))
    reg = site.console.register
    seed(reg)
    for i in range(EXTRA):  # one every three hours from 1 October, to Cafcass or a school
        to = {"rcpts": ("t@school.example",)} if i % 3 else {"recipients": CAFCASS}
        record(reg, accepted(f"P{i}", at("2026-10-01") + i * 3 * 3600, **to))  # type: ignore[arg-type]
    site.clock.now = at("2026-11-20")
    return site


def config(site: Site) -> Path:
    return site.settings.storage.database.parent / "gateway.toml"


def cli_entries(site: Site, *argv: str) -> tuple[list[int], str]:
    done = run_cli("register", "list", *argv, "--config", config(site))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if lines == ["No entries match."]:
        return [], "0"
    return [int(line.split()[0]) for line in lines[2:-1]], lines[-1].split()[0]


def shown(html: str) -> tuple[list[int], str]:
    entries = [int(n) for n in re.findall(r'<td><a href="/register/entry/(\d+)">', html)]
    count = re.search(r'<p id="count">(\d+) record', html)
    assert count is not None
    return entries, count.group(1)


def strip(html: str) -> dict[str, int]:
    found = re.findall(r'<div class="figure figure-(\w+)"><dt>[^<]*</dt><dd>(\d+)</dd>', html)
    return {k: int(n) for k, n in found}


def apply(client: TestClient, csrf: str, **form: str) -> str:
    reply = client.post("/register/filter", data={"csrf": csrf, "action": "apply", **form})
    assert reply.status_code == 200
    return reply.text


FILTERS: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({}, ()),
    ({"staff": BOB}, ("--staff", BOB)),
    ({"consent": "refused"}, ("--consent", "refused")),
    ({"incomplete": "1"}, ("--incomplete",)),
    ({"organisation": "cafcass"}, ("--organisation", "cafcass")),
    ({"recipient": "police"}, ("--recipient", "police")),
    ({"held_for_approval": "1"}, ("--held-for-approval",)),
    ({"refused": "1"}, ("--refused",)),
    (
        {"since": "2026-10-06", "until": "2026-11-04"},
        ("--since", "2026-10-06", "--until", "2026-11-04"),
    ),
]


def test_list_page_equals_the_cli_for_each_filter_page_by_page(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        for form, argv in FILTERS:
            page = apply(client, csrf, **form)
            expected, count = cli_entries(site, *argv)
            entries, total = shown(page)
            assert total == count == str(len(expected)), form
            assert entries == expected[::-1][:100], form  # newest first
            if len(expected) > 100:
                rest, _ = shown(client.get("/register?page=2").text)
                assert rest == expected[::-1][100:], form
        assert len(cli_entries(site)[0]) == 11 + EXTRA  # the checks above saw both pages


def test_summary_strip_shows_the_chosen_periods_figures(site: Site) -> None:
    reg = site.console.register
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        page = apply(client, csrf, since="2026-09-01", until="2026-11-30")
        assert "At a glance: 2026-09-01 to 2026-11-30" in page
        truth = summarise_records(
            reg.records(), since=at("2026-09-01", 0), until=at("2026-12-01", 0), now=site.clock()
        )
        assert strip(page) == {key: n for key, _, n in totals(truth)}
        assert strip(page) == {
            "sent": 9 + EXTRA,
            "refused": 1,
            "held_now": 1,
            "without_consent": 3,
            "incomplete": 3 + EXTRA,  # the extra messages record no consent
            "inform_outstanding": 2,
        }
        page = apply(client, csrf, since="2026-11-01", until="2026-11-30")
        assert strip(page)["held_now"] == 1 and strip(page)["sent"] == 6


def test_a_manager_sees_only_their_reports_in_the_list_and_the_strip(site: Site) -> None:
    reg = site.console.register
    scope = RegisterScope(MANAGER, frozenset({BOB, "sam.staff@c4f.example"}))
    with site.client() as client:
        signed_in(client, MANAGER)
        page = client.get("/register").text
        mine = [r.seq for r in reg.records(Filters()) if scope.shows(r)]
        q2 = reg.store.query("SELECT seq FROM register WHERE queue_id = 'Q2'")[0][0]
        assert shown(page) == ([q2], "1") and mine == [q2]  # BOB's
        assert strip(page) == {
            "sent": 1,
            "refused": 0,
            "held_now": 0,
            "without_consent": 1,
            "incomplete": 0,
            "inform_outstanding": 1,
        }
