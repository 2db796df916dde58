"""``contacts export | contacts import --update``: the list round-trips through CSV, run as
an admin runs it (real processes, a real pipe, the real database and register)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from support.contacts import contacts_config
from support.contacts import contacts_state as state
from support.subprocess_gateway import gateway_command, run_cli

from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.register.ledger import Register
from gateway.settings.register import RegisterSettings
from gateway.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = contacts_config(tmp_path)
    store = Store(tmp_path / "gateway.db")
    try:
        register = Register.from_settings(store, RegisterSettings().resolved(tmp_path))
        repo = ContactRepository(
            store, keyring=register.keyring, register_audit=register.record_admin
        )
        for address, org in (
            ("j.whitaker@cafcass.gov.uk", "Cafcass"),
            ("k.lee@council.example", "Council"),
            ("=sum@x.example", "Finance, North"),  # a formula-like cell and a comma
        ):
            repo.add(
                Contact(
                    0,
                    "address",
                    address,
                    "Jane Whitaker",
                    org,
                    "Adviser",
                    "Sam Admin",
                    "2026-03-01",
                    "phoned back",
                    "2027-03-01",
                    notes='said "call first"\nthen email',
                ),
                "Sam Admin",
            )
    finally:
        store.close()
    return path


def pipe(config: Path, *import_args: str) -> subprocess.CompletedProcess[str]:
    cmd = shlex.join(gateway_command())
    cfg = shlex.quote(str(config))
    script = (
        f"set -o pipefail; {cmd} contacts export --config {cfg} | "
        f"{cmd} contacts import - --config {cfg} {shlex.join(import_args)}"
    )
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_export_piped_into_import_changes_nothing(config: Path) -> None:
    before = state(config)
    done = pipe(config, "--update", "--by", "Kim")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "imported 0 new, 0 updated, 3 unchanged contact(s)\n"
    assert state(config) == before  # no contact, audit row or register entry changed


def test_one_edited_row_changes_exactly_that_contact(config: Path, tmp_path: Path) -> None:
    contacts, history, entries = state(config)
    exported = run_cli("contacts", "export", "--config", config).stdout
    edited = tmp_path / "edited.csv"
    edited.write_text(exported.replace(",Council,", ",County Council,"), encoding="utf-8")

    refused = run_cli("contacts", "import", edited, "--by", "Kim", "--config", config)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"{edited}: line 4, address: 'k.lee@council.example' is approved as C-002 with "
        "another organisation; import with --update to change it",
        "c4f-gateway contacts: error: 1 bad row(s); nothing imported",
    ]
    assert state(config) == (contacts, history, entries)

    done = run_cli("contacts", "import", edited, "--update", "--by", "Kim", "--config", config)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "updated C-002 k.lee@council.example: organisation",
        "imported 0 new, 1 updated, 2 unchanged contact(s)",
    ]
    after, new_history, new_entries = state(config)
    assert [c.organisation for c in after] == ["Cafcass", "County Council", "Finance, North"]
    assert [a for a in after if a.id != 2] == [c for c in contacts if c.id != 2]
    [change] = new_history[len(history) :]
    assert (change["contact_id"], change["action"], change["actor"]) == (2, "import", "Kim")
    assert json.loads(change["after"])["organisation"] == "County Council"
    assert new_entries[: len(entries)] == entries
    [entry] = new_entries[len(entries) :]  # one register entry, for that one contact
    assert entry.kind == "admin"
    assert (entry.data["actor"], entry.data["action"]) == ("Kim", "contact import")
    details = entry.data["details"]
    assert details["contact_id"] == 2
    assert (details["before"]["organisation"], details["after"]["organisation"]) == (
        "Council",
        "County Council",
    )
    # And the edited list, exported again, is what was imported.
    assert run_cli("contacts", "export", "--config", config).stdout == edited.read_text("utf-8")


def test_import_help_lists_the_columns_with_an_example() -> None:
    done = run_cli("contacts", "import", "--help")
    assert done.returncode == 0
    out = done.stdout
    assert "--update" in out
    assert "*address" in out and "(also: email, e-mail, email address, mail, domain)" in out
    assert "organisation" in out and "organization" in out
    assert " review_due " in out and "12 months after approved_on" in out
    assert "  address,j.whitaker@cafcass.gov.uk,Jane Whitaker,Cafcass," in out
