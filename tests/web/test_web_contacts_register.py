"""The console's contact add, edit and remove write the contact and its register admin entry
in one transaction (issue 15): both exist afterwards, or neither does."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.web import ADMIN, BASE_URL, FakeResolver, Site, add_contact, make_site, signed_in

from gateway.register.criteria import Filters
from gateway.web.app import create_app

ADDRESS = "j.smith@cafcass.example"


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(
        tmp_path / "gw", ca, resolver=FakeResolver({"cafcass.example": ["10 mx.cafcass.example."]})
    )


def _entries(site: Site) -> list[tuple[int, str]]:
    """The register's admin entries as (seq, action), read from the entries themselves."""
    return [
        (r.seq, r.data["action"]) for r in site.console.register.records(Filters(kinds=("admin",)))
    ]


def _contact_rows(site: Site) -> int:
    return int(site.store.query("SELECT count(*) FROM contacts")[0][0])


def _edit(client: TestClient, csrf: str, organisation: str) -> int:
    reply = client.post(
        "/contacts/1",
        data={
            "csrf": csrf,
            "action": "edit",
            "display_name": "Jo Smith",
            "organisation": organisation,
            "verified_how": "phoned back on the office number",
        },
        follow_redirects=False,
    )
    return reply.status_code


def _refuse_register_writes(site: Site) -> None:
    """From now on the database itself refuses any new register entry (a real failure
    inside the change's transaction: the register's insert is aborted by SQLite)."""
    site.store.execute(
        "CREATE TRIGGER refuse_register BEFORE INSERT ON register "
        "BEGIN SELECT RAISE(ABORT, 'register refused'); END"
    )


def test_add_edit_remove_each_write_the_contact_and_one_entry_together(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        before = _entries(site)

        assert add_contact(client, csrf, ADDRESS).status_code == 303
        added = _entries(site)[len(before) :]
        assert [a for _, a in added] == ["contact add"]
        assert _contact_rows(site) == 1

        assert _edit(client, csrf, "Cafcass Cymru") == 303
        edited = _entries(site)[len(before) + 1 :]
        assert [a for _, a in edited] == ["contact edit"]
        contact = site.console.contacts.get(1)
        assert contact is not None and contact.organisation == "Cafcass Cymru"

        assert client.post("/contacts/1/remove", data={"csrf": csrf}).status_code == 200
        removed = _entries(site)[len(before) + 2 :]
        assert [a for _, a in removed] == ["contact remove"]
        assert _contact_rows(site) == 0
    # Each change's entry names the contact and what it was before and after.
    records = site.console.register.records(Filters(kinds=("admin",)))
    details = [r.data["details"] for r in records if r.data["action"].startswith("contact ")]
    assert [(d["contact_id"], bool(d["before"]), bool(d["after"])) for d in details] == [
        (1, False, True),
        (1, True, True),
        (1, True, False),
    ]
    assert details[1]["after"]["organisation"] == "Cafcass Cymru"


def test_reg13_a_failed_register_write_leaves_neither_the_change_nor_an_entry(
    site: Site,
) -> None:
    app = create_app(site.console)
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        csrf = signed_in(client, ADMIN)
        # C-001, written while the register still takes it
        assert add_contact(client, csrf, ADDRESS).status_code == 303
        entries = _entries(site)
        history = site.console.contacts.history(1)
        _refuse_register_writes(site)
        reply = add_contact(client, csrf, "k.lee@cafcass.example", display_name="Kim Lee")
        assert reply.status_code == 500
        assert _edit(client, csrf, "Cafcass Cymru") == 500
        assert client.post("/contacts/1/remove", data={"csrf": csrf}).status_code == 500
    assert _entries(site) == entries  # no entry ...
    assert _contact_rows(site) == 1  # ... and no contact added or removed
    contact = site.console.contacts.get(1)
    assert contact is not None and contact.organisation == "Cafcass"  # nor edited
    assert site.console.contacts.history(1) == history  # nor an audit row of the contact's
