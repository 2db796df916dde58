"""Managers read the register of their own reports (ACC-1).

Policy, "Disclosing information": staff make *their line manager* aware of concerns about
a disclosure. Held messages already go only to the sender's line managers; with
``[web] manager_scope = "reports"`` (the default) the register follows: a manager sees
the entries of the staff they manage and those they acted on themselves, and an entry
outside that answers exactly as a missing one does. Admins see everything, and
``manager_scope = "all"`` gives managers the whole register again.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.register import accepted, record, refused
from support.web import ADMIN, MANAGER, STAFF, Site, add_account, make_site, signed_in

from gateway.errors import ConfigError
from gateway.settings.web import WebSettings

OTHER_MANAGER = "mia.manager@c4f.example"
OTHER = "oli.other@c4f.example"  # reports to OTHER_MANAGER, not to MANAGER
FAMILY = "F-1042"


def _site(tmp_path: Path, ca: TestCA, web: WebSettings | None = None) -> Site:
    site = make_site(tmp_path / "gw", ca, web=web)
    add_account(site.store, OTHER_MANAGER, "manager")
    add_account(site.store, OTHER, "staff", (OTHER_MANAGER,))
    reg, now = site.console.register, site.clock()
    fam = {"family": FAMILY, "consent": "obtained"}
    record(reg, accepted("Q1", now - 4000, staff=STAFF, disclosure=fam))  # 1: MANAGER's report
    record(reg, accepted("Q2", now - 3000, staff=OTHER, disclosure=fam))  # 2: not theirs
    record(reg, refused("Q3", now - 2000))  # 3: alice, nobody's report
    record(reg, accepted("Q4", now - 1000, staff=OTHER))  # 4: not theirs, but they act on it
    reg.annotate(4, MANAGER, concern="Checked with the social worker")  # 5: MANAGER acted
    reg.annotate(2, OTHER_MANAGER, informed="yes", informed_on="2024-07-05")  # 6: follows up 2
    reg.checkpoint()
    return site


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return _site(tmp_path, ca)


def _entries(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/register/entry/(\d+)">', html)]


def _csv_entries(client: TestClient) -> list[int]:
    reply = client.get("/register/export.csv")
    assert reply.status_code == 200
    return [int(row["entry"]) for row in csv.DictReader(io.StringIO(reply.text))]


def _missing_answer(client: TestClient, seq: int) -> tuple[int, str]:
    """Status and page body, with the entry number asked for taken out."""
    reply = client.get(f"/register/entry/{seq}", follow_redirects=False)
    main = re.search(r"<main.*</main>", reply.text, re.S)
    return reply.status_code, main.group(0).replace(str(seq), "N") if main else reply.text


def test_acc1_manager_sees_only_their_reports_and_what_they_acted_on(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        page = client.get("/register").text
        assert _entries(page) == [4, 1]
        assert "2 records" in page
        assert _csv_entries(client) == [1, 4]
        assert client.get("/register/entry/1").status_code == 200
        assert "Checked with the social worker" in client.get("/register/entry/4").text

        # Out of scope answers exactly as a missing entry, follow-ups included (no redirect
        # that would show the original exists).
        missing = _missing_answer(client, 99)
        assert missing[0] == 404
        for seq in (2, 3, 6):
            assert _missing_answer(client, seq) == missing, seq
        # ... and cannot be annotated.
        for seq in (2, 99):
            reply = client.post(
                f"/register/entry/{seq}", data={"csrf": csrf, "action": "concern", "concern": "x"}
            )
            assert f"there is no register entry {seq}" in reply.text
        notes = [e.ref for e in site.console.register.entries() if e.kind == "annotation"]
        assert notes == [4, 2]  # nothing added

        # The family report and its text are scoped too.
        client.post("/register/report", data={"csrf": csrf, "family": FAMILY})
        report = client.get("/register/report").text
        assert 'href="/register/entry/1"' in report and 'href="/register/entry/2"' not in report
        text = client.get("/register/report.txt").text
        assert "1 record(s)" in text and "entry 1:" in text and "entry 2:" not in text

        # Filters cannot reach outside the scope either.
        client.post("/register/filter", data={"csrf": csrf, "staff": OTHER})
        assert _entries(client.get("/register").text) == [4]
        assert _csv_entries(client) == [4]


def test_acc1_other_manager_and_admin(site: Site) -> None:
    with site.client() as client:
        signed_in(client, OTHER_MANAGER)
        assert _entries(client.get("/register").text) == [4, 2]
        assert _csv_entries(client) == [2, 4]
        assert client.get("/register/entry/1").status_code == 404
    with site.client() as client:
        signed_in(client, ADMIN)
        assert _entries(client.get("/register").text) == [4, 3, 2, 1]
        assert _csv_entries(client) == [1, 2, 3, 4]
        assert client.get("/register/entry/3").status_code == 200


def test_acc1_manager_scope_all_shows_the_whole_register(tmp_path: Path, ca: TestCA) -> None:
    site = _site(tmp_path, ca, WebSettings(require_totp=(), manager_scope="all"))
    with site.client() as client:
        signed_in(client, MANAGER)
        assert _entries(client.get("/register").text) == [4, 3, 2, 1]
        assert _csv_entries(client) == [1, 2, 3, 4]
        assert client.get("/register/entry/2").status_code == 200


def test_acc1_manager_scope_is_read_from_the_config(tmp_path: Path, ca: TestCA) -> None:
    assert WebSettings().manager_scope == "reports"
    site = make_site(tmp_path / "a", ca, config={"web": {"manager_scope": "all"}})
    assert site.settings.web.manager_scope == "all"
    with pytest.raises(ConfigError, match=r"web\.manager_scope: must be one of 'reports', 'all'"):
        make_site(tmp_path / "b", ca, config={"web": {"manager_scope": "everyone"}})
