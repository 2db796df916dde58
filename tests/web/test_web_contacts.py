"""Approved contacts in the console: the same repository, rules and sweep as the CLI."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.web import (
    ADMIN,
    MANAGER,
    FakeResolver,
    Site,
    add_contact,
    admin_actions,
    make_site,
    signed_in,
)

from gateway.cli import main
from gateway.directory.contacts_csv import CSV_COLUMNS

ZONES = {
    "cafcass.example": ["10 mx.cafcass.example."],
    "council.example": ["10 mail.council.example."],
    "sneaky.example": ["10 in.efaxsend.com."],  # mail really goes to a fax service
}


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca, resolver=FakeResolver(ZONES))


def _rows(html: str) -> dict[str, str]:
    """Contact list rows: ref -> the row's HTML."""
    return dict(
        re.findall(
            r'<tr class="[^"]*">\s*<td><a href="/contacts/\d+">(C-\d+)</a></td>(.*?)</tr>',
            html,
            re.S,
        )
    )


def test_add_contact_goes_through_the_repository_and_the_trails(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        reply = add_contact(client, csrf, "j.smith@cafcass.example")
        assert (reply.status_code, reply.headers["location"]) == (303, "/contacts/1")
        page = client.get("/contacts/1").text
        assert "Added C-001 (review due" in page and "MX check: no flags." in page
    c = site.console.contacts.get(1)
    assert c is not None
    assert (c.address, c.approved_by, c.organisation) == (
        "j.smith@cafcass.example",
        ADMIN,
        "Cafcass",
    )
    today = site.console.contacts.today()
    assert c.review_due == today.replace(year=today.year + 1).isoformat()
    assert c.mx_hosts == ("mx.cafcass.example",)  # the sweep's first look: the baseline
    history = [(h["actor"], h["action"]) for h in site.console.contacts.history(1)]
    assert history == [(ADMIN, "add"), ("mx-sweep", "mx-sweep")]
    # One register entry, written in the add's own transaction, as the CLI writes it.
    [entry] = [a for a in admin_actions(site) if a[1].startswith("contact")]
    assert entry[:2] == (ADMIN, "contact add") and entry[2]["contact_id"] == 1
    assert (entry[2]["before"], entry[2]["after"]["address"]) == (None, c.address)


def test_fax_routes_and_bad_input_are_refused_with_the_cli_words(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        fax = add_contact(client, csrf, "12345@faxgateway")
        assert fax.status_code == 400
        assert (
            "a domain without a dot, as fax gateways use: fax routes cannot be approved" in fax.text
        )
        assert 'value="12345@faxgateway"' in fax.text  # the form keeps what was typed
        missing = add_contact(client, csrf, "a@cafcass.example", verified_how="")
        assert missing.status_code == 400 and "verified how is required" in missing.text
        add_contact(client, csrf, "j.smith@cafcass.example")
        dup = add_contact(client, csrf, "J.Smith@cafcass.example")
        assert "already approved as C-001" in dup.text
    assert [c.address for c in site.console.contacts.all()] == ["j.smith@cafcass.example"]


def test_warnings_due_reviews_and_the_review_actions(site: Site) -> None:
    today = site.console.contacts.today()
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        add_contact(client, csrf, "team-fax@council.example")  # C-001: a soft fax sign
        add_contact(
            client,
            csrf,
            "old@cafcass.example",
            approved_on=(today - timedelta(days=800)).isoformat(),
            review_due=(today - timedelta(days=435)).isoformat(),
        )  # C-002: lapsed
        add_contact(
            client,
            csrf,
            "soon@cafcass.example",
            review_due=(today + timedelta(days=10)).isoformat(),
        )
        add_contact(client, csrf, "jo@sneaky.example")  # C-004: MX at a fax service
        rows = _rows(client.get("/contacts").text)
        assert "looks like a shared fax mailbox" in rows["C-001"]
        assert "approval lapsed" in rows["C-002"]
        assert "review due" in rows["C-003"]
        assert (
            "fax route by DNS: MX in.efaxsend.com belongs to fax service efaxsend.com"
            in rows["C-004"]
        )
        html = client.get("/contacts").text
        assert re.search(r'<tr class="lapsed warn">\s*<td><a href="/contacts/2">', html)
        assert re.search(r'<tr class="due warn">\s*<td><a href="/contacts/3">', html)

        client.post("/contacts/1", data={"csrf": csrf, "action": "attest-not-fax"})
        client.post("/contacts/2", data={"csrf": csrf, "action": "renew"})
        client.post("/contacts/4", data={"csrf": csrf, "action": "accept-mx"})
        edited = client.post(
            "/contacts/3",
            data={
                "csrf": csrf,
                "action": "edit",
                "display_name": "Sue Oon",
                "organisation": "Cafcass Cymru",
                "verified_how": "in person",
            },
        )
        assert (
            "Saved." in edited.text
            and "organisation: &#39;Cafcass&#39; -&gt; &#39;Cafcass Cymru&#39;" in edited.text
        )
        rows = _rows(client.get("/contacts").text)
        assert "looks like" not in rows["C-001"] and "lapsed" not in rows["C-002"]
        assert "fax route" not in rows["C-004"]
    repo = site.console.contacts
    assert repo.get(1).not_fax_by == ADMIN  # type: ignore[union-attr]
    renewed = repo.get(2)
    assert renewed is not None and renewed.approved_by == ADMIN
    assert date.fromisoformat(renewed.review_due) > today + timedelta(days=360)
    assert repo.get(4).mx_flag == ""  # type: ignore[union-attr]
    assert [h["action"] for h in repo.history(3)] == ["add", "mx-sweep", "edit"]
    assert {a for _, a, _ in admin_actions(site)} >= {
        "contact attest-not-fax",
        "contact renew",
        "contact accept-mx",
        "contact edit",
    }


def test_remove_asks_first(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        add_contact(client, csrf, "j.smith@cafcass.example")
        confirm = client.get("/contacts/1/remove")
        assert "Withdraw the approval of j.smith@cafcass.example" in confirm.text
        assert site.console.contacts.get(1) is not None  # asking changed nothing
        done = client.post("/contacts/1/remove", data={"csrf": csrf})
        assert "Removed C-001 j.smith@cafcass.example." in done.text
        assert client.get("/contacts/1").status_code == 404
    assert site.console.contacts.all() == []


def _csv(*rows: dict[str, str]) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for r in rows:
        lines.append(",".join(r.get(c, "") for c in CSV_COLUMNS))
    return "\r\n".join(lines) + "\r\n"


ROW = {
    "kind": "address",
    "display_name": "Kim Lee",
    "organisation": "Council",
    "approved_by": "Ada",
    "verified_how": "phoned back",
}


def test_import_previews_then_applies_all_or_nothing(site: Site) -> None:
    good = _csv(
        {**ROW, "address": "k.lee@council.example"},
        {**ROW, "kind": "domain", "address": "cafcass.example", "display_name": ""},
    )
    bad = _csv(
        {**ROW, "address": "k.lee@council.example"},
        {**ROW, "address": "x@efax.com"},
        {**ROW, "address": "K.Lee@council.example"},
    )
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        preview = client.post(
            "/contacts/import/preview",
            data={"csrf": csrf},
            files={"file": ("contacts.csv", bad.encode(), "text/csv")},
        ).text
        assert "3 row(s): 1 to add, 0 to update, 0 unchanged, 2 with problems." in preview
        assert "an address at fax service efax.com: fax routes cannot be approved" in preview
        assert "line 4, address: &#39;K.Lee@council.example&#39; is also on line 2" in preview
        assert 'action="/contacts/import">' not in preview  # no way to apply a bad file
        assert site.console.contacts.all() == []
        preview = client.post(
            "/contacts/import/preview", data={"csrf": csrf, "csv_text": good}
        ).text
        assert "2 row(s): 2 to add, 0 to update, 0 unchanged, 0 with problems." in preview
        assert site.console.contacts.all() == []  # a preview changes nothing
        hidden = re.search(
            r'<textarea name="csv_text" hidden aria-hidden="true">(.*?)</textarea>', preview, re.S
        )
        assert hidden is not None
        done = client.post("/contacts/import", data={"csrf": csrf, "csv_text": good}).text
        assert "Imported: 2 new, 0 updated, 0 unchanged." in done
        again = client.post("/contacts/import/preview", data={"csrf": csrf, "csv_text": good}).text
        assert "2 row(s): 0 to add, 0 to update, 2 unchanged, 0 with problems." in again
        assert "unchanged (C-001)" in again and "Nothing to import" in again
    assert [c.address for c in site.console.contacts.all()] == [
        "k.lee@council.example",
        "cafcass.example",
    ]
    imports = [
        (a, d["contact_id"]) for a, action, d in admin_actions(site) if action == "contact import"
    ]
    assert imports == [(ADMIN, 1), (ADMIN, 2)]  # one register entry per contact


def test_search_and_export_match_the_cli(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        add_contact(client, csrf, "j.smith@cafcass.example")
        add_contact(
            client, csrf, "k.lee@council.example", organisation="Council", display_name="Kim"
        )
        client.post("/contacts/search", data={"csrf": csrf, "q": "council"})
        assert list(_rows(client.get("/contacts").text)) == ["C-002"]
        client.post("/contacts/search", data={"csrf": csrf, "action": "clear"})
        assert list(_rows(client.get("/contacts").text)) == ["C-001", "C-002"]
        exported = client.get("/contacts/export.csv").text
    capsys.readouterr()
    assert main(["contacts", "export", "--config", str(site.settings.source)]) == 0
    assert exported == capsys.readouterr().out


def _flag(site: Site, cid: int) -> bool:
    c = site.console.contacts.get(cid)
    assert c is not None
    return c.requires_approval


def _edit(client: TestClient, csrf: str, cid: int, **fields: str):  # type: ignore[no-untyped-def]
    c_fields = {
        "csrf": csrf,
        "action": "edit",
        "display_name": "Jo Smith",
        "organisation": "Cafcass",
        "verified_how": "phoned back on the office number",
        **fields,
    }
    return client.post(f"/contacts/{cid}", data=c_fields)


def test_requires_approval_is_set_shown_and_cleared_on_the_forms(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        assert 'name="requires_approval"' in client.get("/contacts/new").text
        add_contact(client, csrf, "j.smith@cafcass.example", requires_approval="1")  # C-001
        add_contact(client, csrf, "k.lee@council.example")  # C-002
        assert (_flag(site, 1), _flag(site, 2)) == (True, False)

        page = client.get("/contacts/1").text
        assert (
            "<dt>Line-manager approval</dt><dd>required: messages to this contact are held "
            "until a line manager approves them</dd>" in page
        )
        assert re.search(r'<input type="checkbox" id="requires_approval"[^>]* checked', page)
        other = client.get("/contacts/2").text
        assert "<dt>Line-manager approval</dt><dd>not required</dd>" in other
        assert not re.search(r'id="requires_approval"[^>]* checked', other)
        rows = _rows(client.get("/contacts").text)
        assert "(line-manager approval)" in rows["C-001"]
        assert "(line-manager approval)" not in rows["C-002"]

        cleared = _edit(client, csrf, 1)  # the box left unticked
        assert "Saved." in cleared.text
        assert "requires_approval: True -&gt; False" in cleared.text
        set_ = _edit(client, csrf, 2, requires_approval="1")
        assert "Saved." in set_.text
        assert "Nothing changed." in _edit(client, csrf, 2, requires_approval="1").text
        assert "(line-manager approval)" not in _rows(client.get("/contacts").text)["C-001"]
    assert (_flag(site, 1), _flag(site, 2)) == (False, True)
    repo = site.console.contacts
    assert [h["action"] for h in repo.history(2)] == ["add", "mx-sweep", "edit"]
    edits = [d for _, action, d in admin_actions(site) if action == "contact edit"]
    assert [(d["contact_id"], d["before"]["requires_approval"]) for d in edits] == [
        (1, True),
        (2, False),
    ]


def test_requires_approval_changes_need_the_csrf_token_and_an_admin(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        add_contact(client, csrf, "j.smith@cafcass.example")
        for token in ("", "forged-token"):
            reply = _edit(client, token, 1, requires_approval="1")
            assert reply.status_code == 403 and "form has expired" in reply.text
        forged_new = add_contact(
            client, "forged-token", "k.lee@council.example", requires_approval="1"
        )
        assert forged_new.status_code == 403
    assert [c.address for c in site.console.contacts.all()] == ["j.smith@cafcass.example"]
    assert not _flag(site, 1)
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        reply = _edit(client, csrf, 1, requires_approval="1")
        assert reply.status_code == 403 and "Admins only" in reply.text
    assert not _flag(site, 1)
    assert [h["action"] for h in site.console.contacts.history(1)] == ["add", "mx-sweep"]


def test_import_preview_reads_the_mark_and_old_files(site: Site) -> None:
    marked = _csv({**ROW, "address": "k.lee@council.example", "requires_approval": "yes"})
    old_columns = [c for c in CSV_COLUMNS if c != "requires_approval"]
    old = "\r\n".join(
        [
            ",".join(old_columns),
            ",".join({**ROW, "address": "a@b.example"}.get(c, "") for c in old_columns),
        ]
    )
    bad = _csv({**ROW, "address": "k.lee@council.example", "requires_approval": "maybe"})
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        preview = client.post("/contacts/import/preview", data={"csrf": csrf, "csv_text": bad}).text
        assert (
            "line 2, requires_approval: &#39;maybe&#39; is not &#39;yes&#39;, &#39;no&#39; or empty"
            in preview
        )
        for text in (marked, old):
            preview = client.post(
                "/contacts/import/preview", data={"csrf": csrf, "csv_text": text}
            ).text
            assert "1 row(s): 1 to add, 0 to update, 0 unchanged, 0 with problems." in preview
            done = client.post("/contacts/import", data={"csrf": csrf, "csv_text": text}).text
            assert "Imported: 1 new, 0 updated, 0 unchanged." in done
    assert [(c.address, c.requires_approval) for c in site.console.contacts.all()] == [
        ("k.lee@council.example", True),
        ("a@b.example", False),
    ]


def test_import_page_lists_the_columns_with_an_example(site: Site) -> None:
    with site.client() as client:
        signed_in(client, ADMIN)
        body = client.get("/contacts/import").text
    table = re.search(r'<table id="import-columns">(.*?)</table>', body, re.S)
    assert table is not None
    names = re.findall(r"<tr><td><code>(\w+)</code></td>", table.group(1))
    assert tuple(names) == CSV_COLUMNS
    assert "<td>organization, org, agency</td><td>required</td>" in table.group(1)
    assert "<td>12 months after approved_on</td>" in table.group(1)
    example = re.search(r'<pre id="import-example">(.*?)</pre>', body, re.S)
    assert example is not None and example.group(1).startswith(",".join(CSV_COLUMNS))


def test_import_preview_shows_adds_updates_and_unchanged_before_writing(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        first = _csv(
            {**ROW, "address": "k.lee@council.example"},
            {**ROW, "address": "j.smith@cafcass.example", "organisation": "Cafcass"},
        )
        client.post("/contacts/import", data={"csrf": csrf, "csv_text": first})
        exported = client.get("/contacts/export.csv").text
        edited = (
            exported.replace(",Council,", ",County Council,")
            + _csv({**ROW, "address": "new@council.example"}).split("\r\n", 1)[1]
        )
        contacts, trail = site.console.contacts.all(), admin_actions(site)

        preview = client.post(
            "/contacts/import/preview", data={"csrf": csrf, "csv_text": edited}
        ).text
        assert "3 row(s): 1 to add, 1 to update, 1 unchanged, 0 with problems." in preview
        rows = re.findall(r'<tr class="(\w+)"><td>(\d+)</td><td>([^<]*)</td>', preview)
        assert rows == [
            ("update", "2", "k.lee@council.example"),
            ("unchanged", "3", "j.smith@cafcass.example"),
            ("add", "4", "new@council.example"),
        ]
        assert "will update C-001:" in preview
        assert (
            "<li>organisation: &ldquo;Council&rdquo; &rarr; &ldquo;County Council&rdquo;</li>"
            in (preview)
        )
        assert "unchanged (C-002)" in preview
        assert "Add 1 and update 1 contact(s)" in preview
        assert (site.console.contacts.all(), admin_actions(site)) == (contacts, trail)

        done = client.post("/contacts/import", data={"csrf": csrf, "csv_text": edited}).text
        assert "Imported: 1 new, 1 updated, 1 unchanged." in done
        after = site.console.contacts.all()
        assert [c.organisation for c in after] == ["County Council", "Cafcass", "Council"]
        assert after[1] == contacts[1]
        new_entries = admin_actions(site)[len(trail) :]
        assert [(a, action, d["contact_id"]) for a, action, d in new_entries] == [
            (ADMIN, "contact import", 1),
            (ADMIN, "contact import", 3),
        ]
        # The same file again writes nothing: no contact, audit row or register entry.
        history, trail = site.console.contacts.history(), admin_actions(site)
        again = client.post("/contacts/import", data={"csrf": csrf, "csv_text": edited}).text
        assert "Imported: 0 new, 0 updated, 3 unchanged." in again
        assert site.console.contacts.all() == after
        assert (site.console.contacts.history(), admin_actions(site)) == (history, trail)
