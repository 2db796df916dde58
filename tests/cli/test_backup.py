"""``backup`` while the gateway runs and writes, and ``restore`` that checks before it replaces.

A real gateway (port 0, STARTTLS, Maildir delivery) takes mail while ``c4f-gateway
backup`` runs as a subprocess; the copy is then checked like ``restore`` checks it, and
restored over the live database once the gateway has stopped.

The body files of large messages (``DATABASE-bodies/QUEUEID``) go with the backup and come
back with the restore: the messages are queued over SMTP by a gateway that does not
deliver (``deliver=False``), and a restored one is then delivered whole. Files that are not
the body of a queued message (a crash's leftover, a partial write) are made with
:class:`BodyFiles` or by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

from conftest import StartGateway
from support.database import dump
from support.harness import RunningGateway, message
from support.subprocess_gateway import run_cli

from gateway.cli.backup import take
from gateway.queue.bodies import IN_FILE_OVER, BodyFiles, bodies_folder
from gateway.register.ledger import Register
from gateway.schema_version import CURRENT
from gateway.settings.register import RegisterSettings
from gateway.store import Store

SENDER, COLLEAGUE = "alice@c4f.example", "bob@c4f.example"
KEYS = ("spool.key", "register.key", "register-mac.key")
NO_ROW = "0123456789AB"  # a body file whose message has no row (delivered, or cut short)
LINE = "Body-marker-5c2e: notes from the home visit\n"
BIG = LINE * (2 * IN_FILE_OVER // len(LINE))  # kept in a file of its own


def ok(*args: str | Path) -> str:
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(*args: str | Path) -> str:
    """The one error line of a command that must exit 2."""
    done = run_cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def sending(gw: RunningGateway, count: int) -> None:
    for i in range(count):
        _e, reply = await gw.send(SENDER, [COLLEAGUE], message(SENDER, [COLLEAGUE], f"n{i}"))
        assert reply.startswith("2.0.0 Queued as") or "Queued as" in reply


async def test_backup_while_serving_then_restore_over_the_live_database(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw = await start_gateway()
    gw.add_staff(SENDER)
    gw.add_staff(COLLEAGUE)
    await sending(gw, 3)
    await gw.wait_maildir(3)
    await asyncio.to_thread(ok, "register", "checkpoint", "--config", gw.config_path)
    config, db = gw.config_path, gw.settings.storage.database
    backup, keys = tmp_path / "backup", tmp_path / "keys"

    # The gateway takes and delivers mail while the copy is made.
    load = asyncio.create_task(sending(gw, 6))
    out = await asyncio.to_thread(
        ok, "backup", "--config", config, "--to", backup, "--keys-to", keys
    )
    await load
    await sending(gw, 2)  # after the copy: the live database moves on
    await gw.wait_maildir(11)
    lines = out.splitlines()
    assert lines[0].startswith(
        f"Backed up {db} (schema version {CURRENT}), 1 checkpoint(s) and 0 body file(s) to "
    )
    assert lines[1] == f"Key files in {keys}: keep them apart from the backup."

    manifest = json.loads((backup / "manifest.json").read_text())
    assert (manifest["format"], manifest["schema_version"]) == ("c4f-gateway-backup/1", CURRENT)
    assert manifest["gateway_version"] and manifest["created_at"]
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == {"gateway.db"} | {
        f"checkpoints/{p.name}" for p in gw.settings.register.checkpoint_dir.glob("head-*.json")
    }
    for name, entry in listed.items():
        data = (backup / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    copy = sqlite3.connect(f"file:{backup / 'gateway.db'}?immutable=1", uri=True)
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copied_queue = copy.execute("SELECT count(*) FROM register").fetchone()[0]
    copy.close()
    assert copied_queue >= 3 * 2  # accepted and delivered, at least for the first three

    # The keys are only in their own folder, private; none of them in the backup.
    assert mode(backup) == mode(keys) == 0o700
    assert sorted(p.name for p in keys.iterdir()) == sorted([*KEYS, "keys-manifest.json"])
    in_backup = b"".join(p.read_bytes() for p in backup.rglob("*") if p.is_file())
    for name in KEYS:
        assert mode(keys / name) == 0o600
        secret = (keys / name).read_text().split()[-1].encode()
        assert secret not in in_backup, name

    # Not while the gateway has the database open.
    line = refused("restore", "--config", config, "--from", backup, "--yes")
    assert line == (
        f"c4f-gateway restore: error: {db}: in use by another c4f-gateway process (serve, "
        "web or a command): stop it first"
    )

    await gw.gateway.stop()
    before = dump(db)
    assert before != dump(backup / "gateway.db")
    out = ok("restore", "--config", config, "--from", backup, "--yes")
    assert out.startswith(f"Restored {db} from {backup} (taken {manifest['created_at']}, ")
    assert "register verified" in out
    assert dump(db) == dump(backup / "gateway.db")
    [aside] = db.parent.glob(f"{db.name}.replaced-*")
    assert dump(aside / db.name) == before
    assert f"What it replaced is in {aside}." in out
    assert "Register verified" in ok("register", "verify", "--config", config)


async def test_restore_checks_the_backup_before_it_replaces_anything(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw = await start_gateway()
    gw.add_staff(SENDER)
    gw.add_staff(COLLEAGUE)
    await sending(gw, 2)
    await gw.wait_maildir(2)
    config, db = gw.config_path, gw.settings.storage.database
    backup, keys = tmp_path / "backup", tmp_path / "keys"
    await asyncio.to_thread(ok, "backup", "--config", config, "--to", backup, "--keys-to", keys)
    await gw.gateway.stop()
    live = db.read_bytes()

    # A byte changed: the manifest says so.
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    data = bytearray((damaged / "gateway.db").read_bytes())
    data[-100] ^= 1
    (damaged / "gateway.db").write_bytes(bytes(data))
    line = refused("restore", "--config", config, "--from", damaged, "--yes")
    assert line == (
        f"c4f-gateway restore: error: {damaged / 'gateway.db'}: differs from the manifest's "
        "size or SHA-256: damaged or altered"
    )

    # A file slipped in: only what the manifest lists is restored.
    added = tmp_path / "added"
    shutil.copytree(backup, added)
    (added / "checkpoints" / "head-2099-01-01.json").write_text("{}")
    line = refused("restore", "--config", config, "--from", added, "--yes")
    assert line == (
        f"c4f-gateway restore: error: {added}: checkpoints/head-2099-01-01.json: not in the "
        "manifest: added to the backup?"
    )

    # An entry edited and the manifest written to match: register verify catches it.
    forged = tmp_path / "forged"
    shutil.copytree(backup, forged)
    conn = sqlite3.connect(forged / "gateway.db")
    conn.execute("UPDATE register SET size = size + 1 WHERE seq = 1")
    conn.commit()
    conn.close()
    manifest = json.loads((forged / "manifest.json").read_text())
    data = (forged / "gateway.db").read_bytes()
    manifest["files"][0].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (forged / "manifest.json").write_text(json.dumps(manifest))
    line = refused("restore", "--config", config, "--from", forged, "--yes")
    assert line.startswith(
        f"c4f-gateway restore: error: {forged}: register verify fails, nothing replaced: "
    )

    # Another gateway's keys: the chain does not check out with them.
    other = tmp_path / "other-keys"
    shutil.copytree(keys, other)
    elsewhere = RegisterSettings().resolved(tmp_path / "elsewhere")
    Register.create_keys(elsewhere)
    shutil.copyfile(elsewhere.mac_key_file, other / "register-mac.key")
    keys_manifest = json.loads((other / "keys-manifest.json").read_text())
    for entry in keys_manifest["files"]:
        data = (other / entry["path"]).read_bytes()
        entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (other / "keys-manifest.json").write_text(json.dumps(keys_manifest))
    line = refused("restore", "--config", config, "--from", backup, "--keys-from", other, "--yes")
    assert line.startswith(
        f"c4f-gateway restore: error: {backup}: register verify fails, nothing replaced: "
    )

    # Without a terminal and without --yes nothing is replaced either.
    line = refused("restore", "--config", config, "--from", backup)
    assert line.endswith("no terminal to confirm on: add --yes to replace the database")

    assert db.read_bytes() == live
    assert not list(db.parent.glob(f"{db.name}.replaced-*"))
    assert not list(db.parent.glob(f".{db.name}.restore*"))


async def test_restore_onto_a_new_machine_with_the_keys_kept_apart(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw = await start_gateway()
    gw.add_staff(SENDER)
    gw.add_staff(COLLEAGUE)
    await sending(gw, 2)
    await gw.wait_maildir(2)
    backup, keys = tmp_path / "backup", tmp_path / "keys"
    await asyncio.to_thread(
        ok, "backup", "--config", gw.config_path, "--to", backup, "--keys-to", keys
    )
    await gw.gateway.stop()
    listing = ok("queue", "list", "--config", gw.config_path)
    staff = ok("staff", "list", "--config", gw.config_path)

    # The new machine has the config and the certificate, but no database and no keys.
    new = tmp_path / "new"
    new.mkdir()
    config = new / "gateway.toml"
    config.write_text(gw.config_path.read_text().replace(str(gw.config_path.parent), str(new)))
    settings = gw.settings
    assert not (new / "gateway.db").exists()
    out = ok("restore", "--config", config, "--from", backup, "--keys-from", keys, "--yes")
    assert "register verified" in out
    for name, path in (
        ("spool.key", settings.storage.spool_key_file),
        ("register.key", settings.register.key_file),
        ("register-mac.key", settings.register.mac_key_file),
    ):
        placed = Path(str(path).replace(str(gw.config_path.parent), str(new)))
        assert placed.read_bytes() == (keys / name).read_bytes(), name
        assert mode(placed) == 0o600
    assert ok("staff", "list", "--config", config) == staff
    assert ok("queue", "list", "--config", config) == listing
    assert "Register verified" in ok("register", "verify", "--config", config)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


async def queue_one(gw: RunningGateway, body: str) -> str:
    """Send one message; its queue ID."""
    _e, reply = await gw.send(SENDER, [COLLEAGUE], message(SENDER, [COLLEAGUE], body=body))
    return reply.split()[-1]


async def queued(start_gateway: StartGateway, folder: Path) -> tuple[RunningGateway, str, str]:
    """A gateway that does not deliver, with a large message queued (its body in a file)
    and a small one (its body in its row)."""
    gw = await start_gateway(folder=folder, deliver=False)
    gw.add_staff(SENDER)
    gw.add_staff(COLLEAGUE)
    big, small = await queue_one(gw, BIG), await queue_one(gw, "short\n")
    assert sorted(files_in(bodies_folder(gw.settings.storage.database))) == [big]
    return gw, big, small


async def test_backup_takes_the_body_file_of_each_row_it_copies_and_no_other(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw, big, small = await queued(start_gateway, tmp_path / "gw")
    config, db = gw.config_path, gw.settings.storage.database
    live = bodies_folder(db)
    BodyFiles(live).write(NO_ROW, os.urandom(IN_FILE_OVER + 1))  # its row never committed
    (live / f".tmp-{small}").write_bytes(b"half written")
    backup = tmp_path / "backup"

    out = await asyncio.to_thread(ok, "backup", "--config", config, "--to", backup)
    assert f" checkpoint(s) and 1 body file(s) to {backup}: " in out.splitlines()[0]

    # Only the file of the row in the copy: not the one without a row, nor a partial one.
    assert files_in(backup / "bodies") == {big: (live / big).read_bytes()}
    assert mode(backup / "bodies") == 0o700
    assert mode(backup / "bodies" / big) == 0o600
    manifest = json.loads((backup / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"] if f["path"].startswith("bodies/")}
    data = (backup / "bodies" / big).read_bytes()
    assert listed == {
        f"bodies/{big}": {
            "path": f"bodies/{big}",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    }
    # The live folder is as it was: the backup only reads it.
    assert sorted(files_in(live)) == sorted([big, NO_ROW, f".tmp-{small}"])


async def test_a_body_file_that_comes_during_the_copy_is_taken_for_its_row(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw, big, small = await queued(start_gateway, tmp_path / "gw")
    await gw.gateway.stop()
    db = gw.settings.storage.database
    live = BodyFiles(bodies_folder(db))
    taken = live.path(big).read_bytes()

    def during_the_copy(_copied: int, _pages: int) -> None:
        # After the first pass: a file for a row in the copy appears, and one already
        # taken goes (as delivery unlinks it once its row's deletion is committed).
        if not live.path(small).exists():
            live.write(small, os.urandom(IN_FILE_OVER + 1))
            live.remove(big)

    store = Store(db, check_version=False)
    try:
        manifest = take(store, gw.settings, tmp_path / "backup", None, during_the_copy)
    finally:
        store.close()
    copied = files_in(tmp_path / "backup" / "bodies")
    assert copied == {big: taken, small: live.path(small).read_bytes()}
    listed = {f["path"] for f in manifest["files"]}
    assert {f"bodies/{big}", f"bodies/{small}"} <= listed


async def test_restore_puts_the_body_files_back_and_keeps_those_it_replaces(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    folder = tmp_path / "gw"
    gw, big, _small = await queued(start_gateway, folder)
    config, db = gw.config_path, gw.settings.storage.database
    live = bodies_folder(db)
    backup = tmp_path / "backup"
    await asyncio.to_thread(ok, "backup", "--config", config, "--to", backup)
    backed_up = files_in(backup / "bodies")
    assert list(backed_up) == [big]

    # The live queue moves on after the backup: another large message, its own file.
    later = await queue_one(gw, "Later\n" + BIG)
    await gw.gateway.stop()
    replaced = files_in(live)
    assert sorted(replaced) == sorted([big, later])

    out = ok("restore", "--config", config, "--from", backup, "--yes")
    assert "register verified" in out
    assert files_in(live) == backed_up
    assert mode(live) == 0o700
    assert mode(live / big) == 0o600
    [aside] = db.parent.glob(f"{db.name}.replaced-*")
    assert files_in(aside / live.name) == replaced
    assert f"What it replaced is in {aside}." in out
    assert not list(db.parent.glob(f".{live.name}*"))

    # The restored rows open their restored files: the large message goes out whole.
    gw = await start_gateway(folder=folder)
    delivered = await gw.wait_maildir(2)
    [sent] = [d for d in delivered if b"Body-marker-5c2e" in d]
    assert sent.count(LINE.rstrip("\n").encode() + b"\r\n") == BIG.count(LINE)
    assert not any(b"Later" in d for d in delivered)


async def test_restore_refuses_an_altered_body_file_before_it_replaces_anything(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw, big, _small = await queued(start_gateway, tmp_path / "gw")
    config, db = gw.config_path, gw.settings.storage.database
    live = bodies_folder(db)
    backup = tmp_path / "backup"
    await asyncio.to_thread(ok, "backup", "--config", config, "--to", backup)
    await gw.gateway.stop()
    database, bodies = db.read_bytes(), files_in(live)

    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    data = bytearray((damaged / "bodies" / big).read_bytes())
    data[100] ^= 1
    (damaged / "bodies" / big).write_bytes(bytes(data))
    line = refused("restore", "--config", config, "--from", damaged, "--yes")
    assert line == (
        f"c4f-gateway restore: error: {damaged / 'bodies' / big}: differs from the manifest's "
        "size or SHA-256: damaged or altered"
    )

    added = tmp_path / "added"
    shutil.copytree(backup, added)
    (added / "bodies" / NO_ROW).write_bytes(data)
    line = refused("restore", "--config", config, "--from", added, "--yes")
    assert line == (
        f"c4f-gateway restore: error: {added}: bodies/{NO_ROW}: not in the manifest: "
        "added to the backup?"
    )

    assert (db.read_bytes(), files_in(live)) == (database, bodies)
    assert not list(db.parent.glob(f"{db.name}.replaced-*"))
    assert not list(db.parent.glob(f".{db.name}*.restore"))


async def test_restore_of_a_backup_made_before_body_files_empties_the_folder(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    gw = await start_gateway(deliver=False)
    gw.add_staff(SENDER)
    gw.add_staff(COLLEAGUE)
    await queue_one(gw, "short\n")
    config, db = gw.config_path, gw.settings.storage.database
    backup = tmp_path / "backup"
    await asyncio.to_thread(ok, "backup", "--config", config, "--to", backup)
    (backup / "bodies").rmdir()  # as the previous release wrote it: no such folder
    await queue_one(gw, BIG)
    await gw.gateway.stop()
    live = bodies_folder(db)
    replaced = files_in(live)
    assert len(replaced) == 1

    ok("restore", "--config", config, "--from", backup, "--yes")
    assert files_in(live) == {}
    assert mode(live) == 0o700
    [aside] = db.parent.glob(f"{db.name}.replaced-*")
    assert files_in(aside / live.name) == replaced
