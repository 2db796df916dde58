"""A message held for a line manager has not been sent, and the console never says it was:
its entry page, the family report and ``register show`` call it held (not sent). A
child-protection record's entry page says the client copy withholds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.pki import TestCA
from support.register import accepted, record
from support.subprocess_gateway import run_cli
from support.web import MANAGER, STAFF, Site, hold, make_site, signed_in

NOT_SENT = "message held for a line manager&#39;s approval (not sent)"


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


def test_a_held_message_is_not_called_sent(site: Site) -> None:
    hold(site, "Q1", STAFF, consent="not-sought", reasons=["consent not sought"])
    [held] = [r for r in site.console.register.records() if r.entry.queue_id == "Q1"]
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        page = client.get(f"/register/entry/{held.seq}").text
        assert f"<h1>Entry {held.seq}: {NOT_SENT}</h1>" in page
        client.post("/register/report", data={"csrf": csrf, "family": "F-1042"})
        report = client.get("/register/report").text
        assert f"{held.seq}</a>: held for a line manager&#39;s approval (not sent)</h3>" in report
        assert ": sent</h3>" not in report
    shown = run_cli("register", "show", str(held.seq), "--config", site.settings.source)
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    assert first == f"Entry {held.seq}: message held for a line manager's approval (not sent)"


def test_a_child_protection_record_says_the_client_copy_withholds_it(site: Site) -> None:
    tagged = {"family": "F-7", "consent": "obtained", "child_protection": True}
    record(site.console.register, accepted("Q2", site.clock(), disclosure=tagged, staff=STAFF))
    [r] = [r for r in site.console.register.records() if r.kind == "accepted"]
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        page = client.get(f"/register/entry/{r.seq}").text
        client.post("/register/report", data={"csrf": csrf, "family": "F-7"})
        report = client.get("/register/report").text
        copy = client.get("/register/report/client-copy").text
    withheld = "and safeguarding or child-protection entries, are withheld"
    assert withheld in report and withheld in copy
    assert "1 entry withheld" in copy
    assert (
        "a safeguarding or child-protection matter: a client copy of the family report withholds it"
        in page
    )
    assert f"<h1>Entry {r.seq}: message sent</h1>" in page
