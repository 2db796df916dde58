"""gateway.directory.contacts and gateway.directory.contacts_csv: the contact list on a real
SQLite file, its audit trail and CSV."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.contacts import contacts_keyring

from gateway.directory.contact import Contact, ContactError, review_date
from gateway.directory.contact_cache import ContactCache
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_csv import CSV_COLUMNS, CSVImportError, export_csv
from gateway.directory.contacts_import import ImportPlan, import_csv
from gateway.store import Store

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def contact(address: str, **kw: object) -> Contact:
    values: dict[str, object] = {
        "id": 0,
        "kind": "address",
        "address": address,
        "display_name": "Jane Whitaker",
        "organisation": "Cafcass",
        "role": "Family court adviser",
        "approved_by": "Sam Admin",
        "approved_on": "2026-03-01",
        "verified_how": "phoned back on a known number",
        "review_due": "2027-03-01",
    }
    values.update(kw)
    return Contact(**values)  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path) -> ContactRepository:
    store = Store(tmp_path / "gateway.db")
    return ContactRepository(store, lambda: NOW, keyring=contacts_keyring(store))


def test_add_find_remove(repo: ContactRepository) -> None:
    c = repo.add(contact("J.Whitaker@CAFCASS.GOV.UK"), "Sam Admin")
    assert c.ref == "C-001"
    assert c.address == "J.Whitaker@cafcass.gov.uk"  # domain lower-cased, local part kept
    for text in ("C-001", "c-1", "1", "j.whitaker@cafcass.gov.uk", "J.WHITAKER@cafcass.gov.uk"):
        found = repo.find(text)
        assert found is not None and found.id == c.id
    with pytest.raises(ContactError, match="already approved as C-001"):
        repo.add(contact("j.whitaker@cafcass.gov.uk"), "Sam Admin")
    removed = repo.remove(c.id, "Kim")
    assert removed.address == c.address
    assert repo.find("C-001") is None and repo.all() == []
    with pytest.raises(ContactError, match="no contact C-001"):
        repo.remove(c.id, "Kim")


def test_whole_domain_entries_are_explicit_and_separate(repo: ContactRepository) -> None:
    d = repo.add(contact("Family-Court.ORG.UK", kind="domain", display_name=""), "Sam")
    a = repo.add(contact("clerk@family-court.org.uk"), "Sam")
    assert (d.kind, d.address) == ("domain", "family-court.org.uk")
    assert repo.find("family-court.org.uk") == d  # the domain, not an address
    assert repo.find("clerk@family-court.org.uk") == a
    snap = ContactCache(repo.store, repo.keyring).current()
    assert snap.domains == {"family-court.org.uk": d}
    assert list(snap.by_key) == ["clerk@family-court.org.uk"]
    with pytest.raises(ContactError, match="domain"):
        repo.add(contact("[192.0.2.1]", kind="domain"), "Sam")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"organisation": " "}, "organisation is required"),
        ({"approved_by": ""}, "approved by is required"),
        ({"verified_how": ""}, "verified how is required"),
        ({"display_name": ""}, "display name is required"),
        ({"review_due": "2026-03-01"}, "review date must be after"),
        ({"approved_on": "1 March"}, "YYYY-MM-DD"),
        ({"address": "postmaster"}, "address is not valid"),
        ({"address": '"o k"@x.example'}, "unusual form"),
        ({"address": "ok%evil.example@x.example"}, "unusual form"),
    ],
)
def test_bad_entries_are_refused(
    repo: ContactRepository, change: dict[str, str], message: str
) -> None:
    with pytest.raises(ContactError, match=message):
        values = dict(change)
        repo.add(contact(values.pop("address", "j.whitaker@cafcass.gov.uk"), **values), "Sam")
    assert repo.all() == []
    assert repo.history() == []


def test_unusual_address_only_when_asked_and_matched_exactly(repo: ContactRepository) -> None:
    c = repo.add(contact("records@[192.0.2.10]", unusual=True), "Sam")
    assert c.address == "records@[192.0.2.10]"
    snap = ContactCache(repo.store, repo.keyring).current()
    assert snap.exact == {"records@[192.0.2.10]": c}
    assert snap.by_key == {}


def test_every_change_is_audited_with_before_and_after(repo: ContactRepository) -> None:
    c = repo.add(contact("j.whitaker@cafcass.gov.uk"), "Sam Admin")
    repo.update(c.id, "Kim", "renew", approved_on="2026-03-02", review_due="2027-03-02")
    repo.update(c.id, "Kim", "renew", approved_on="2026-03-02")  # no change: no row
    repo.remove(c.id, "Lee")
    rows = repo.history(c.id)
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("add", "Sam Admin"),
        ("renew", "Kim"),
        ("remove", "Lee"),
    ]
    assert all(r["at"] == "2026-03-02T09:30:00+00:00" and r["os_user"] for r in rows)
    assert rows[0]["before"] is None
    assert json.loads(rows[0]["after"])["address"] == "j.whitaker@cafcass.gov.uk"
    before, after = json.loads(rows[1]["before"]), json.loads(rows[1]["after"])
    assert (before["review_due"], after["review_due"]) == ("2027-03-01", "2027-03-02")
    assert json.loads(rows[2]["before"])["review_due"] == "2027-03-02"
    assert rows[2]["after"] is None


def test_changes_move_the_generation_so_snapshots_reload(repo: ContactRepository) -> None:
    cache = ContactCache(repo.store, repo.keyring)
    first = cache.current()
    assert first.by_key == {}
    assert cache.current() is first  # nothing changed: the same snapshot
    c = repo.add(contact("j.whitaker@cafcass.gov.uk"), "Sam")
    second = cache.current()
    assert second is not first and "j.whitaker@cafcass.gov.uk" in second.by_key
    repo.record_mx(c.id, ("mx.cafcass.gov.uk",), "2026-03-02T00:00:00")
    assert cache.current() is second  # operational data only: no reload


def test_review_date_is_twelve_months_later() -> None:
    assert review_date(date(2026, 3, 1)) == date(2027, 3, 1)
    assert review_date(date(2028, 2, 29)) == date(2029, 2, 28)
    assert review_date(date(2026, 8, 31), months=6) == date(2027, 2, 28)


def test_expiry_is_on_the_review_date() -> None:
    c = contact("x@y.example", review_due="2027-03-01")
    assert not c.expired(date(2027, 2, 28))
    assert c.expired(date(2027, 3, 1))


def test_hint_allowance_per_user_per_day(tmp_path: Path) -> None:
    now = [NOW]
    store = Store(tmp_path / "g.db")
    repo = ContactRepository(store, lambda: now[0], keyring=contacts_keyring(store))
    assert [repo.take_hint("alice", 2) for _ in range(3)] == [True, True, False]
    assert repo.take_hint("bob", 2)
    now[0] = datetime(2026, 3, 3, tzinfo=UTC)
    assert repo.take_hint("alice", 2)


# -- CSV --------------------------------------------------------------------------------


def _fill(repo: ContactRepository) -> None:
    repo.add(contact("j.whitaker@cafcass.gov.uk", notes='said "call first", then email'), "S")
    repo.add(contact("family-court.org.uk", kind="domain", display_name=""), "S")
    repo.add(contact("records@[192.0.2.10]", unusual=True, display_name="Records, legacy"), "S")
    repo.add(
        contact(
            "=sum@x.example",
            display_name="=cmd|' /C calc'!A0",
            not_fax_by="Sam",
            not_fax_on="2026-03-01",
            role="+44 20 7946",
        ),
        "S",
    )
    repo.add(contact("duty@council.example", requires_approval=True), "S")


def _stored(plan: ImportPlan) -> list[Contact]:
    return [r.contact for r in plan.writes if r.contact is not None]


def test_csv_round_trips(tmp_path: Path, repo: ContactRepository) -> None:
    _fill(repo)
    exported = export_csv(repo)
    assert exported.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert "'=cmd|" in exported  # a spreadsheet will not run it as a formula
    other = ContactRepository(Store(tmp_path / "other.db"), lambda: NOW, keyring=repo.keyring)
    imported = import_csv(other, exported, "Kim")
    assert len(imported.of("add")) == 5
    assert export_csv(other) == exported
    strip = [replace(c, id=0) for c in repo.all()]
    assert [replace(c, id=0) for c in other.all()] == strip
    assert [r["action"] for r in other.history()] == ["import"] * 5
    assert [c.requires_approval for c in other.all()] == [False] * 4 + [True]
    rows = exported.splitlines()
    assert rows[0].endswith(",requires_approval,public_domain_override")
    assert rows[-1].endswith(",yes,") and rows[1].endswith(",")


def test_bad_csv_names_every_bad_line_and_imports_nothing(repo: ContactRepository) -> None:
    repo.add(contact("already@there.example"), "S")
    header = ",".join(CSV_COLUMNS)
    text = "\r\n".join(
        [
            header,
            "address,good@one.example,Good One,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,",
            "address,postmaster,No Domain,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,",
            "person,x@y.example,X,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,",
            "address,z@y.example,Z,Org,,Sam,01/03/2026,phoned,2027-03-01,,,,",
            "address,already@there.example,A,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,",
            "address,good@one.example,Twice,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,",
            "address,q@y.example,Q,Org,,Sam,2026-03-01,,2027-03-01,,,,",
            "address,w@y.example,W,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,,,,extra",
            "address,fax=+44123@y.example,F,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,",
            "",
        ]
    )
    with pytest.raises(CSVImportError) as err:
        import_csv(repo, text, "Kim", reject=lambda a: "a fax route" if "fax=" in a else None)
    problems = err.value.problems
    assert problems == [
        "line 3, address: 'postmaster' is not valid: An email address must have an @-sign.",
        "line 4, kind: 'person' is not 'address' or 'domain'",
        "line 5, approved_on: '01/03/2026' is not YYYY-MM-DD",
        "line 6, address: 'already@there.example' is approved as C-001 with another "
        "display_name, organisation, role, approved_by, verified_how; "
        "import with --update to change it",
        "line 7, address: 'good@one.example' is also on line 2",
        "line 8, verified_how: '' is empty; it is required",
        "line 9: 1 more cell(s) than columns",
        "line 10, address: 'fax=+44123@y.example' is a fax route",
    ]
    assert [c.address for c in repo.all()] == ["already@there.example"]  # nothing half-done
    assert len(repo.history()) == 1


def test_csv_header_must_match(repo: ContactRepository) -> None:
    with pytest.raises(CSVImportError) as err:
        import_csv(repo, "kind,address,colour\r\naddress,a@b.example,red\r\n", "Kim")
    assert err.value.problems == [
        "line 1, header: missing column(s) organisation, approved_by, verified_how; "
        "unknown column(s) 'colour' (see 'contacts import --help')"
    ]


def test_csv_defaults_review_date_to_twelve_months(repo: ContactRepository) -> None:
    header = ",".join(CSV_COLUMNS)
    row = "address,a@b.example,A B,Org,,Sam,2026-05-31,phoned,,,,,"
    [c] = _stored(import_csv(repo, f"{header}\r\n{row}\r\n", "Kim"))
    assert c.review_due == "2027-05-31"


# -- requires approval --------------------------------------------------------------------


def test_requires_approval_is_stored_changed_and_audited(repo: ContactRepository) -> None:
    plain = repo.add(contact("j.whitaker@cafcass.gov.uk"), "Sam")
    marked = repo.add(contact("duty@council.example", requires_approval=True), "Sam")
    assert (plain.requires_approval, marked.requires_approval) == (False, True)
    assert [(c.address, c.requires_approval) for c in repo.all()] == [
        ("j.whitaker@cafcass.gov.uk", False),
        ("duty@council.example", True),
    ]
    changed = repo.update(plain.id, "Kim", "requires-approval", requires_approval=True)
    assert changed.requires_approval and repo.get(plain.id) == changed
    [added, change] = repo.history(plain.id)
    assert json.loads(added["after"])["requires_approval"] is False
    assert (change["action"], change["actor"]) == ("requires-approval", "Kim")
    before, after = json.loads(change["before"]), json.loads(change["after"])
    assert (before["requires_approval"], after["requires_approval"]) == (False, True)
    snap = ContactCache(repo.store, repo.keyring).current()  # the filters see the change
    assert snap.by_key["j.whitaker@cafcass.gov.uk"].requires_approval


def test_an_export_from_before_still_imports(repo: ContactRepository) -> None:
    old_columns = [c for c in CSV_COLUMNS if c != "requires_approval"]
    row = "address,a@b.example,A B,Org,,Sam,2026-05-31,phoned,,,,,"
    [c] = _stored(import_csv(repo, f"{','.join(old_columns)}\r\n{row}\r\n", "Kim"))
    assert (c.address, c.requires_approval) == ("a@b.example", False)
    assert export_csv(repo).splitlines()[0] == ",".join(CSV_COLUMNS)  # the new column, always


def test_requires_approval_cell_is_yes_or_empty(repo: ContactRepository) -> None:
    header = ",".join(CSV_COLUMNS)
    rows = [
        "address,a@b.example,A B,Org,,Sam,2026-03-01,phoned,,,,,,yes",
        "address,c@d.example,C D,Org,,Sam,2026-03-01,phoned,,,,,,true",
    ]
    with pytest.raises(CSVImportError) as err:
        import_csv(repo, "\r\n".join([header, *rows]) + "\r\n", "Kim")
    assert err.value.problems == ["line 3, requires_approval: 'true' is not 'yes', 'no' or empty"]
    assert repo.all() == []
    [c] = _stored(import_csv(repo, f"{header}\r\n{rows[0]}\r\n", "Kim"))
    assert c.requires_approval


# -- CSV round trip: unchanged, updated, added ----------------------------------------------


def test_reimporting_an_export_changes_nothing(repo: ContactRepository) -> None:
    _fill(repo)
    exported = export_csv(repo)
    generation, history = repo.generation(), repo.history()
    plan = import_csv(repo, exported, "Kim", update=True)
    assert [r.action for r in plan.rows] == ["unchanged"] * 5
    assert [r.before.ref for r in plan.rows if r.before] == [c.ref for c in repo.all()]
    assert (repo.generation(), repo.history()) == (generation, history)
    assert export_csv(repo) == exported


def test_one_edited_row_updates_that_contact_only(repo: ContactRepository) -> None:
    _fill(repo)
    lines = export_csv(repo).split("\r\n")
    assert lines[2].startswith("domain,family-court.org.uk,")
    lines[2] = lines[2].replace(",Cafcass,", ",Cafcass South,")
    lines.insert(3, "address,new@council.example,New One,Council,,Kim,2026-03-01,phoned,,,,,,")
    edited = "\r\n".join(lines)
    before = repo.all()
    with pytest.raises(CSVImportError) as err:
        import_csv(repo, edited, "Kim")  # a change needs --update
    assert err.value.problems == [
        "line 3, address: 'family-court.org.uk' is approved as C-002 with another "
        "organisation; import with --update to change it"
    ]
    assert repo.all() == before
    plan = import_csv(repo, edited, "Kim", update=True)
    assert [(r.line, r.action) for r in plan.rows] == [
        (2, "unchanged"),
        (3, "update"),
        (4, "add"),
        (5, "unchanged"),
        (6, "unchanged"),
        (7, "unchanged"),
    ]
    assert plan.of("update")[0].changed == ("organisation",)
    after = {c.id: c for c in repo.all()}
    assert after[2] == replace(before[1], organisation="Cafcass South")
    assert [after[c.id] for c in before if c.id != 2] == [c for c in before if c.id != 2]
    assert after[6].address == "new@council.example" and after[6].review_due == "2027-03-01"
    changes = repo.history()[5:]
    assert [(r["contact_id"], r["action"], r["actor"]) for r in changes] == [
        (2, "import", "Kim"),
        (6, "import", "Kim"),
    ]
    assert json.loads(changes[0]["before"])["organisation"] == "Cafcass"
    assert json.loads(changes[0]["after"])["organisation"] == "Cafcass South"


def test_headers_match_aliases_and_missing_columns_take_defaults(
    repo: ContactRepository,
) -> None:
    text = (
        "E-mail, Name ,Organization,Approved By,Verified,Review Date\r\n"
        "k.lee@council.example,Kim Lee,Council,Ada,phoned back,\r\n"
        ",,,,,\r\n"  # a spreadsheet's empty row
    )
    [c] = _stored(import_csv(repo, text, "Kim"))
    assert (c.kind, c.address, c.display_name, c.organisation) == (
        "address",
        "k.lee@council.example",
        "Kim Lee",
        "Council",
    )
    assert (c.approved_on, c.review_due, c.role, c.notes) == ("2026-03-02", "2027-03-02", "", "")
    assert (c.unusual, c.requires_approval, c.not_fax_by) == (False, False, "")
    # The same short file again: unchanged. A column it leaves out keeps the contact's value.
    repo.update(c.id, "Sam", "requires-approval", requires_approval=True, role="Adviser")
    plan = import_csv(repo, text.replace("2026", "2026"), "Kim", update=True)
    assert [r.action for r in plan.rows] == ["unchanged"]
    stored = repo.get(c.id)
    assert stored is not None and (stored.requires_approval, stored.role) == (True, "Adviser")


def test_csv_problems_name_line_column_and_value(repo: ContactRepository) -> None:
    header = ",".join(CSV_COLUMNS)
    good = "address,a{n}@b.example,A B,Org,,Sam,2026-03-01,phoned,2027-03-01,,,,,"
    rows = [good.format(n=n) for n in range(5)]
    rows.append("address,z@b.example,Z,Org,,Sam,2026-03-01,phoned,06/12/2026,,,,,")
    rows.append("domain,b.example,,Org,,Sam,2026-03-01,phoned,2026-02-01,,,,,")
    with pytest.raises(CSVImportError) as err:
        import_csv(repo, "\r\n".join([header, *rows]) + "\r\n", "Kim")
    assert err.value.problems == [
        "line 7, review_due: '06/12/2026' is not YYYY-MM-DD",
        "line 8, review_due: '2026-02-01' must be after the approval date",
    ]
    for text, problem in (
        ("", "line 1, header: the file is empty (see 'contacts import --help')"),
        (
            "Email,E-mail,Organisation,approved_by,verified_how\r\n",
            "line 1, header: unknown column(s) 'E-mail' (a second address column) "
            "(see 'contacts import --help')",
        ),
    ):
        with pytest.raises(CSVImportError) as err:
            import_csv(repo, text, "Kim")
        assert err.value.problems == [problem]
        assert "unknown -" not in problem
    assert repo.all() == []


def test_an_update_by_import_keeps_what_the_mx_sweep_saw(repo: ContactRepository) -> None:
    c = repo.add(contact("j.whitaker@cafcass.gov.uk"), "S")
    exported = export_csv(repo)
    repo.record_mx(c.id, ("mx.cafcass.gov.uk",), "2026-03-02T09:00:00+00:00")
    repo.update(c.id, "S", "mx-sweep", mx_flag="fax-mx")
    import_csv(repo, exported.replace(",Cafcass,", ",Cafcass South,"), "Kim", update=True)
    stored = repo.get(c.id)
    assert stored is not None and stored.organisation == "Cafcass South"
    assert (stored.mx_seen, stored.mx_flag) == (("mx.cafcass.gov.uk",), "fax-mx")
