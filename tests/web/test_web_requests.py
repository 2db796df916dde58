"""Requests received in the console, without a browser: the form's checks, the CSV export
that includes requests exactly as ``register export`` does, and the client copy kept to a
manager's scope (``[web] manager_scope = "reports"``).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from support.pki import TestCA
from support.register import accepted, record
from support.web import ADMIN, MANAGER, STAFF, Site, add_account, make_site, signed_in

from gateway.cli import main
from gateway.register import requests

OTHER = "olly.other@c4f.example"  # staff whose line manager is not MANAGER


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    add_account(site.store, OTHER, "staff", (ADMIN,))
    return site


def test_the_form_refuses_a_future_date_and_keeps_what_was_typed(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, STAFF, landing="/held")
        form = {"csrf": csrf, "requester": "Cafcass", "via": "letter", "nature": "Notes"}
        reply = client.post("/requests/new", data={**form, "received": "2999-01-01"})
        assert reply.status_code == 400
        assert "the request cannot be received after today" in reply.text
        assert 'value="Cafcass"' in reply.text
        reply = client.post("/requests/new", data={**form, "via": "fax"})
        assert reply.status_code == 400
        assert "how it arrived must be one of phone, letter, email, in-person" in reply.text
        assert not [r for r in site.console.register.records() if r.kind == "request"]
        reply = client.post("/requests/new", data=form, follow_redirects=False)
        assert (reply.status_code, reply.headers["location"]) == (303, "/requests/new")
    [asked] = [r for r in site.console.register.records() if r.kind == "request"]
    assert (asked.staff, asked.data["via"], asked.data["received"]) == (
        STAFF,
        "letter",
        date.fromtimestamp(site.clock.now).isoformat(),
    )


def test_csv_export_includes_requests_as_the_cli_export_does(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    new = requests.NewRequest("Cafcass", "phone", "2026-01-05", "Notes", STAFF, "F-1")
    number = requests.record(site.console.register, new, date(2026, 1, 6))
    tagged = {"consent": "obtained", "family": "F-1", "request": number, "external": True}
    record(site.console.register, accepted("Q1", site.clock(), disclosure=tagged, staff=STAFF))
    with site.client() as client:
        signed_in(client, MANAGER)
        reply = client.get("/register/export.csv")
    capsys.readouterr()
    assert main(["register", "export", "--config", str(site.settings.source)]) == 0
    assert reply.text == capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["decision"], r["requester"], r["answers"], r["request"]) for r in rows] == [
        ("request received", "Cafcass", str(number + 1), ""),
        ("accepted", "", "", str(number)),
    ]


def test_the_client_copy_reads_only_what_the_manager_may_read(site: Site) -> None:
    for qid, staff in (("Q1", STAFF), ("Q2", OTHER)):
        record(
            site.console.register,
            accepted(qid, site.clock(), disclosure={"family": "F-9"}, staff=staff),
        )
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        client.post("/register/report", data={"csrf": csrf, "family": "F-9"})
        copy = client.get("/register/report/client-copy.txt")
    assert copy.headers["content-disposition"] == (
        'attachment; filename="family-report-client-copy.txt"'
    )
    assert "entry 1: sent" in copy.text and "entry 2" not in copy.text
    assert "1 record(s), 0 entries withheld" in copy.text
