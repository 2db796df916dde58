"""A removed contact's change history is purged with the register's retention (PRIV-2).

Policy, "Storage of information": information is disposed of after three years. While a
contact is approved, its history says who approved it and how the address was checked;
once it is removed, that history (the person's name, organisation, notes, all sealed)
is kept for the register's ``retention_days`` after the removal and then deleted, its
bytes zeroed in the database file and the write-ahead log emptied. The register's own
copy of each change (its admin trail) goes with the register's purge.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import StartGateway

from gateway.cli import main
from gateway.crypto import Keyring
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_retention import purge_removed_history
from gateway.register.ledger import Register
from gateway.settings.register import RegisterSettings
from gateway.store import Store

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RETENTION = 1095  # days: the register's default
NOTES = "Foster carer for the Wobblestone children"


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


def contact(address: str, notes: str = "") -> Contact:
    return Contact(
        0,
        "address",
        address,
        "Zebedee Quartermaine",
        "Xylophone Fostering Trust",
        "liaison",
        "Sam Admin",
        "2026-03-01",
        "phoned back",
        "2027-03-01",
        notes=notes,
    )


def keyring_in(folder: Path) -> Keyring:
    settings = RegisterSettings().resolved(folder)
    Register.create_keys(settings)
    return Keyring.load(settings.key_file)


def removed_long_ago(folder: Path, years: int = 4) -> tuple[int, int]:
    """A contact removed ``years`` ago and one still approved; their ids."""
    clock = Clock(datetime.now(UTC) - timedelta(days=365 * years))
    store = Store(folder / "gateway.db")
    try:
        repo = ContactRepository(store, clock, keyring=keyring_in(folder))
        gone = repo.add(contact("zeb@xylophone.example", NOTES), "Sam Admin")
        kept = repo.add(contact("kim@council.example"), "Sam Admin")
        repo.remove(gone.id, "Lee")
    finally:
        store.close()
    return gone.id, kept.id


def _at_rest(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def test_priv2_removed_contacts_history_is_deleted_after_the_retention_period(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = Store(tmp_path / "gateway.db")
    repo = ContactRepository(store, clock, keyring=keyring_in(tmp_path))
    gone = repo.add(contact("zeb@xylophone.example", NOTES), "Sam Admin")
    kept = repo.add(contact("kim@council.example"), "Sam Admin")
    clock.now += timedelta(days=30)
    repo.remove(gone.id, "Lee")
    sealed = [
        bytes(r["sealed"])
        for r in store.query("SELECT sealed FROM contact_audit WHERE contact_id = ?", (gone.id,))
    ]
    assert len(sealed) == 2 and all(s in _at_rest(store.path) for s in sealed)

    # Not yet: the period runs from the removal, not from the approval.
    clock.now += timedelta(days=RETENTION - 1)
    assert purge_removed_history(repo, RETENTION) == []
    assert [h["action"] for h in repo.history(gone.id)] == ["add", "remove"]

    clock.now += timedelta(days=2)
    assert purge_removed_history(repo, RETENTION, dry_run=True) == [gone.id]
    assert len(repo.history(gone.id)) == 2  # a dry run changes nothing
    assert purge_removed_history(repo, RETENTION) == [gone.id]
    assert repo.history(gone.id) == []
    assert [h["action"] for h in repo.history(kept.id)] == ["add"]  # still approved: kept
    assert [c.id for c in repo.all()] == [kept.id]
    raw = _at_rest(store.path)  # zeroed in the file, nothing left in the log
    assert not any(s in raw for s in sealed)
    assert purge_removed_history(repo, RETENTION) == []  # nothing more to do
    store.close()


def test_priv2_register_purge_also_purges_removed_contacts_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone, kept = removed_long_ago(tmp_path)
    config = tmp_path / "gateway.toml"
    config.write_text('[delivery]\ntransport = "maildir"\n', encoding="utf-8")
    argv = ["register", "purge", "--config", str(config)]

    assert main([*argv, "--dry-run"]) == 0
    assert "Would purge the change history of 1 removed contact(s)" in capsys.readouterr().out
    assert main(argv) == 0
    assert "Purged the change history of 1 removed contact(s)" in capsys.readouterr().out
    store = Store(tmp_path / "gateway.db")
    try:
        repo = ContactRepository(store, keyring=keyring_in(tmp_path))
        assert repo.history(gone) == [] and len(repo.history(kept)) == 1
    finally:
        store.close()


async def test_priv2_serve_purges_removed_contacts_history_daily(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    folder = tmp_path / "gw"
    folder.mkdir()
    gone, kept = removed_long_ago(folder)
    gw = await start_gateway(folder=folder)
    repo = ContactRepository(gw.gateway.store, keyring=keyring_in(folder))
    for _ in range(200):  # the daily jobs run once soon after start
        if not repo.history(gone):
            break
        await asyncio.sleep(0.05)
    assert repo.history(gone) == []
    assert len(repo.history(kept)) == 1
