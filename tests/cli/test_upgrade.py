"""Schema upgrades: a database made by the previous release is upgraded and works.

``tests/fixtures/schema0/`` was written by the release before schema versions (commit
8079e72, ``make_fixture.py`` there): three staff, two contacts (one requiring approval),
three queued messages and one held, ten register entries and a checkpoint, with its test
keys. Every command refuses it until ``upgrade`` has run; ``upgrade`` backs it up, runs
the numbered steps and leaves everything readable, verified and deliverable.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

from conftest import StartGateway
from support.database import dump
from support.harness import base_config, write_config
from support.pki import TestCA
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.schema import STEPS
from gateway.schema_version import CURRENT
from gateway.store import Store

FIXTURE = Path(__file__).parents[1] / "fixtures" / "schema0"
SAM, MONA, BOB = "sam@c4f.example", "mona@c4f.example", "bob@c4f.example"
CONTACT, CAREFUL = "j.smith@partner.example.org", "k.jones@careful.example.org"
HELD = "07E3BF320D64"
QUEUED = {"70F5970286D7", "D72878A55773", "6C634D227478"}


def old_setup(folder: Path, ca: TestCA, upstream: Upstream) -> Path:
    """A copy of the fixture with a config for it; returns the config file."""
    folder.mkdir()
    shutil.copyfile(FIXTURE / "gateway.db", folder / "gateway.db")
    for sub in ("keys", "register-checkpoints"):
        shutil.copytree(FIXTURE / sub, folder / sub)
        for f in (folder / sub).iterdir():
            f.chmod(0o600)
    return write_config(folder / "gateway.toml", base_config(folder, ca, upstream.port))


def user_version(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def ok(*args: str | Path) -> str:
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_steps_are_numbered_one_to_current() -> None:
    assert [s.number for s in STEPS] == list(range(1, CURRENT + 1))
    assert {t for s in STEPS for t in s.tables} >= {"staff", "queue", "holds", "contacts"}


async def test_a_database_of_the_previous_release_is_upgraded_and_delivers(
    tmp_path: Path, ca: TestCA, upstream: Upstream, start_gateway: StartGateway
) -> None:
    folder = tmp_path / "gw"
    config = old_setup(folder, ca, upstream)
    db = folder / "gateway.db"

    # Every command refuses it, and says what to do.
    for command in (["serve"], ["queue", "list"], ["staff", "list"]):
        done = run_cli(*command, "--config", config)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"c4f-gateway {command[0]}: error: {db}: database schema version 0 is older than "
            f"this gateway's ({CURRENT}): stop the gateway and run 'c4f-gateway upgrade "
            "--config FILE' (it takes a backup first)"
        ], command
    assert user_version(db) == 0

    backup = tmp_path / "before-upgrade"
    out = ok("upgrade", "--config", config, "--backup-to", backup).splitlines()
    assert out[0] == f"Backed up {db} (schema version 0) to {backup}."
    assert [ln.split(":")[0] for ln in out[1:-1]] == [f"Step {n}" for n in range(1, CURRENT + 1)]
    assert out[-1] == f"Upgraded {db} from schema version 0 to {CURRENT}."
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["schema_version"] == 0
    assert dump(backup / "gateway.db") == dump(FIXTURE / "gateway.db")
    assert user_version(db) == CURRENT
    # Sealed in place: the contacts' addresses are no longer in the file.
    assert b"partner.example.org" not in db.read_bytes()
    assert b"partner.example.org" in (FIXTURE / "gateway.db").read_bytes()
    again = ok("upgrade", "--config", config)
    assert again == f"{db} is at schema version {CURRENT}: nothing to do.\n"

    # All there, all readable.
    staff = ok("staff", "list", "--config", config)
    for login, role in ((SAM, "staff"), (MONA, "manager"), (BOB, "staff")):
        [line] = [ln for ln in staff.splitlines() if ln.startswith(login)]
        assert role in line.split(), line
    contacts = ok("contacts", "list", "--config", config)
    assert CONTACT in contacts and CAREFUL in contacts
    assert f"{HELD}  {SAM}" in ok("held", "list", "--by", MONA, "--config", config)
    listing = ok("queue", "list", "--config", config)
    assert all(q in listing for q in [*QUEUED, HELD])
    verified = ok("register", "verify", "--config", config)
    assert "Register verified: 10 entries, chain intact, 1 checkpoint(s) agree." in verified
    assert verified.splitlines()[0].startswith("Note: 1 hold entries predate hold steps")

    # The queued messages are delivered; the held one stays held.
    gw = await start_gateway(folder=folder, upstream=upstream)
    arrived = await upstream.wait_for(3, timeout=30)
    await asyncio.sleep(0.5)
    assert len(upstream.arrived) == 3
    assert sorted(a.rcpt_tos[0] for a in arrived) == sorted([CONTACT, SAM, BOB])
    [visit] = [a for a in arrived if a.rcpt_tos == [CONTACT]]
    assert b"Subject: Visit arrangements" in visit.content
    assert b"the contact visit on Tuesday is confirmed" in visit.content
    assert [r.queue_id for r in gw.gateway.spool.rows()] == [HELD]
    await gw.gateway.stop()
    verified = ok("register", "verify", "--config", config)
    assert "Register verified: 13 entries, chain intact" in verified

    # Going back: the backup upgrade took restores, and is refused again until upgraded.
    out = ok("restore", "--config", config, "--from", backup, "--yes").splitlines()
    assert out[-1] == ("Schema version 0 is older than this gateway's: run 'c4f-gateway upgrade'.")
    assert user_version(db) == 0
    assert dump(db) == dump(FIXTURE / "gateway.db")
    assert run_cli("queue", "list", "--config", config).returncode == 2


def test_a_database_newer_than_the_gateway_is_refused(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    config = old_setup(tmp_path / "gw", ca, upstream)
    db = tmp_path / "gw" / "gateway.db"
    ok("upgrade", "--config", config)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {CURRENT + 1}")
    conn.close()
    for command in (["serve"], ["upgrade"], ["held", "list"]):
        done = run_cli(*command, "--config", config)
        assert done.returncode == 2, command
        assert "newer than this gateway's" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_upgrade_refuses_while_a_gateway_has_the_database_open(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    config = old_setup(tmp_path / "gw", ca, upstream)
    db = tmp_path / "gw" / "gateway.db"
    store = Store(db, check_version=False)  # as serve holds it, whatever the version
    try:
        done = run_cli("upgrade", "--config", config)
    finally:
        store.close()
    assert done.returncode == 2
    assert done.stderr == (
        f"c4f-gateway upgrade: error: {db}: in use by another c4f-gateway process (serve, "
        "web or a command): stop it first\n"
    )
    assert user_version(db) == 0
    ok("upgrade", "--config", config)
    # Once current, there is nothing to do, and saying so needs no one to stop.
    store = Store(db)
    try:
        assert ok("upgrade", "--config", config).endswith("nothing to do.\n")
    finally:
        store.close()
