"""Contacts and their change history are sealed at rest (PRIV-1).

Policy, "Storage of information": personal information is kept in a secure place. A
contact names a person, their organisation and role, how their address was checked and
notes about them; the change history repeats all of it. A copy of the database file (a
backup, a stolen disk) must not read as a directory of the people the centre writes to:
every field is sealed with the register's key, and the address is found by a keyed hash.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from support.contacts import contacts_keyring

from gateway.cli import main
from gateway.crypto import Keyring
from gateway.directory.contact_cache import ContactCache
from gateway.directory.contacts import ContactRepository
from gateway.register.ledger import Register
from gateway.schema import Keys, upgrade
from gateway.schema_version import CURRENT, DatabaseRefused
from gateway.settings.register import RegisterSettings
from gateway.store import Store

ADDRESS = "Zebedee.Quartermaine@xylophone-trust.example"
PERSONAL = {
    "--name": "Zebedee Quartermaine",
    "--org": "Xylophone Fostering Trust",
    "--role": "Quixotic liaison worker",
    "--approved-by": "Ottoline Fennimore",
    "--verified": "rang the Wobblestone switchboard back",
    "--notes": "Lives at 9 Wobblestone Court; calls after 4pm only",
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    Register.create_keys(RegisterSettings().resolved(tmp_path))  # its key seals contacts
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[delivery]\ntransport = "maildir"\n'
        '[pipeline]\nfilters = ["sender", "fax_route", "contacts"]\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["contacts", *argv, "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _at_rest(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def _plain(value: str) -> list[bytes]:
    return [value.encode(), value.lower().encode(), value.encode("utf-16-le")]


def test_priv1_contact_and_its_history_are_sealed_in_the_database_file(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = config.parent / "gateway.db"
    run(config, capsys, "list")  # creates the database
    # A second connection stays open, so what the commands write stays in the WAL too
    # (the last connection to close would fold it into the file and delete it).
    keep = sqlite3.connect(db)
    keep.execute("SELECT count(*) FROM sqlite_master").fetchall()  # opens the WAL
    try:
        options = [x for pair in PERSONAL.items() for x in pair]
        run(config, capsys, "add", ADDRESS, *options, "--no-dns")
        run(config, capsys, "approval", "C-001", "--required", "--by", "Ottoline Fennimore")
        assert db.with_name(db.name + "-wal").stat().st_size > 0
        raw = _at_rest(db)
        for value in [ADDRESS, "xylophone-trust", *PERSONAL.values()]:
            for form in _plain(value):
                assert form not in raw, value

        # Every command still reads them: by address (any case), by reference, history.
        shown = run(config, capsys, "show", ADDRESS.upper())
        assert "reference:        C-001" in shown
        for value in PERSONAL.values():
            assert value in shown
        assert ADDRESS.split("@")[0] in run(config, capsys, "list")
        history = run(config, capsys, "history", ADDRESS)
        assert "by Ottoline Fennimore" in history and "requires_approval: False -> True" in history
        exported = run(config, capsys, "export")
        assert PERSONAL["--notes"] in exported
    finally:
        keep.close()
    raw = _at_rest(db)  # folded into the file now
    for value in [ADDRESS, *PERSONAL.values()]:
        assert value.encode() not in raw, value


def test_priv1_the_filters_cache_reads_the_sealed_list(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = [x for pair in PERSONAL.items() for x in pair]
    run(config, capsys, "add", ADDRESS, *options, "--no-dns")
    keyring = Keyring.load(RegisterSettings().resolved(config.parent).key_file)
    store = Store(config.parent / "gateway.db")
    try:
        snap = ContactCache(store, keyring).current()
        [c] = snap.contacts
        assert (c.display_name, c.organisation) == (PERSONAL["--name"], PERSONAL["--org"])
        assert list(snap.by_key) == [ADDRESS.lower()]
        # Another key opens nothing: no contact is made up or let through.
        Keyring.create(config.parent / "other.key")
        other = Keyring.load(config.parent / "other.key")
        with pytest.raises(ValueError, match="C-001"):
            ContactRepository(store, keyring=other).all()
        assert ContactRepository(store, keyring=other).find(ADDRESS) is None
    finally:
        store.close()


# The contacts tables as earlier releases created them: every field in clear.
PLAIN_SCHEMA = """
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('address', 'domain')),
    address TEXT NOT NULL, key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL, organisation TEXT NOT NULL, role TEXT NOT NULL,
    approved_by TEXT NOT NULL, approved_on TEXT NOT NULL, verified_how TEXT NOT NULL,
    review_due TEXT NOT NULL, notes TEXT NOT NULL, unusual INTEGER NOT NULL,
    not_fax_by TEXT NOT NULL, not_fax_on TEXT NOT NULL, mx_hosts TEXT, mx_seen TEXT,
    mx_checked_at TEXT NOT NULL DEFAULT '', mx_flag TEXT NOT NULL DEFAULT '',
    requires_approval INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE contact_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, actor TEXT NOT NULL, os_user TEXT NOT NULL, action TEXT NOT NULL,
    contact_id INTEGER NOT NULL, before TEXT, after TEXT
);
CREATE TABLE contact_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE contact_hints (
    login TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (login, day)
);
INSERT INTO contacts (id, kind, address, key, display_name, organisation, role, approved_by,
    approved_on, verified_how, review_due, notes, unusual, not_fax_by, not_fax_on, mx_hosts,
    requires_approval)
VALUES (7, 'address', 'Zebedee.Quartermaine@xylophone-trust.example',
    'zebedee.quartermaine@xylophone-trust.example', 'Zebedee Quartermaine',
    'Xylophone Fostering Trust', 'Quixotic liaison worker', 'Ottoline Fennimore', '2026-01-01',
    'rang the Wobblestone switchboard back', '2099-01-01', 'calls after 4pm only', 0,
    'Ottoline Fennimore', '2026-01-01', '["mx.xylophone-trust.example"]', 1);
INSERT INTO contact_audit (id, at, actor, os_user, action, contact_id, before, after)
VALUES (3, '2026-01-01T09:00:00+00:00', 'Ottoline Fennimore', 'ofennimore', 'add', 7, NULL,
    '{"address": "Zebedee.Quartermaine@xylophone-trust.example"}');
INSERT INTO contact_hints VALUES ('pemberton.staff', '2026-01-01', 2);
"""


def test_priv1_contacts_kept_in_clear_by_an_earlier_release_are_sealed_in_place(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.executescript(PLAIN_SCHEMA)
    old.close()
    with pytest.raises(DatabaseRefused, match="older than this gateway's"):
        Store(db)
    store = Store(db, check_version=False, exclusive=True)
    keyring = contacts_keyring(store)
    assert upgrade(store, Keys(spool=keyring, register=keyring)) == CURRENT
    store.close()
    store = Store(db)
    try:
        repo = ContactRepository(store, keyring=contacts_keyring(store))
        # Nothing lost: the same reference, every field, found by address in any case.
        c = repo.find("ZEBEDEE.QUARTERMAINE@xylophone-trust.example")
        assert c is not None and c.ref == "C-007"
        assert (c.organisation, c.notes, c.requires_approval, c.mx_hosts) == (
            "Xylophone Fostering Trust",
            "calls after 4pm only",
            True,
            ("mx.xylophone-trust.example",),
        )
        [change] = repo.history(7)
        assert (change["id"], change["actor"], change["os_user"]) == (
            3,
            "Ottoline Fennimore",
            "ofennimore",
        )
        assert "Zebedee.Quartermaine" in change["after"]
        # The next contact gets the next id, not one the earlier release used.
        added = repo.add(dataclasses.replace(c, id=0, address="new@xylophone-trust.example"), "t")
        assert added.id == 8
        # Running again finds nothing in clear and changes nothing.
        assert ContactRepository(store, keyring=contacts_keyring(store)).get(7) == c
    finally:
        store.close()
    raw = db.read_bytes()
    for value in ("Quartermaine", "Xylophone", "Wobblestone", "Ottoline", "pemberton"):
        assert value.encode() not in raw, value
        assert value.lower().encode() not in raw, value
