"""``c4f-gateway restore``: put a backup back, after checking it, keeping what it replaces.

Before anything is replaced: every file the backup's manifest lists (the database, the
checkpoints, the body files of large messages) has its size and SHA-256, and nothing
else is in the backup; the backup is not of a newer schema than this gateway; and
``register verify`` of the backed-up database passes against the backed-up checkpoints,
with the register MAC key the config names (or the one in ``--keys-from``). The check runs
on a copy next to the database, which then takes its place by rename.

A running gateway is detected by the database's lock (``DATABASE.lock``): ``serve``, the
console and every command hold it shared while they have the database open, and restore
takes it exclusively, or refuses. This works whatever the listeners are and wherever the
console runs, and the lock goes with the process even when it is killed.

The replaced database (with its write-ahead log), its folder of body files, checkpoints
and, with ``--keys-from``, key files are moved into ``DATABASE.replaced-TIME/`` next to
the database. The backup's body files (none in a backup made before they were kept in
files) are first copied into a folder of their own next to the live one and made durable,
which then takes the live folder's place by rename: a failure leaves the old folder or
the new one, never some of each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli import CLIError
from gateway.cli.backup import (
    BODIES,
    CHECKPOINTS,
    DATABASE,
    FORMAT,
    KEYS_FORMAT,
    KEYS_MANIFEST,
    MANIFEST,
    copy_private,
    digest,
    is_body_name,
    key_files,
)
from gateway.cli.common import add_config_arg, load_settings, logs_to_stderr
from gateway.queue.bodies import bodies_folder
from gateway.register.codec import MacKey
from gateway.register.verify import VerifyResult, verify
from gateway.schema_version import CURRENT
from gateway.settings.register import register_settings
from gateway.store import Store, lock_path, take_lock
from gateway.store_lock import write_lock_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "restore",
        help="check a backup, then put it in place of the database (gateway stopped)",
        description=(
            "Check a backup made by 'c4f-gateway backup' (manifest digests, schema "
            "version, register verify against its checkpoints) and only then replace the "
            "database, the body files of its large messages and the register checkpoints "
            "with it. Refuses while serve, the console or a command has the database "
            "open. What it replaces is kept in DATABASE.replaced-TIME/ next to the "
            "database."
        ),
    )
    add_config_arg(p)
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        metavar="DIR",
        help="a folder written by 'c4f-gateway backup --to'",
    )
    p.add_argument(
        "--keys-from",
        type=Path,
        metavar="DIR",
        help="key files written by 'backup --keys-to': used for the check and put in place",
    )
    p.add_argument("--yes", action="store_true", help="do not ask before replacing")
    p.set_defaults(func=run)


def _manifest(folder: Path, name: str, fmt: str) -> dict[str, Any]:
    path = folder / name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CLIError(f"{path}: cannot read the manifest: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise CLIError(f"{path}: not a {fmt} manifest")
    listed = {str(entry["path"]) for entry in doc.get("files", [])}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    unlisted = sorted(present - listed - {name})
    if unlisted:
        raise CLIError(f"{folder}: {unlisted[0]}: not in the manifest: added to the backup?")
    for entry in doc.get("files", []):
        file = folder / entry["path"]
        if not file.is_file():
            raise CLIError(f"{file}: listed in the manifest but missing")
        if file.stat().st_size != entry["size"] or digest(file) != entry["sha256"]:
            raise CLIError(
                f"{file}: differs from the manifest's size or SHA-256: damaged or altered"
            )
    return doc


def _verify(staged: Path, checkpoints: Path, mac_key_file: Path) -> VerifyResult:
    store = Store(staged, check_version=False)
    try:
        if not store.query("SELECT 1 FROM sqlite_master WHERE name = 'register'"):
            return VerifyResult()  # made before serve first ran: nothing recorded yet
        return verify(store, MacKey.load(mac_key_file), checkpoints, time.time())
    finally:
        store.close()


def _confirm(args: argparse.Namespace, db: Path) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CLIError("no terminal to confirm on: add --yes to replace the database")
    answer = input(f"Replace {db} and its checkpoints with the backup? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CLIError("nothing replaced")


def _sync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stage_bodies(copied: Path, staged: Path) -> None:
    """The backup's body files copied into the new folder ``staged`` (0700, files 0600,
    all durable). A backup made before bodies were kept in files has no ``bodies/``: the
    folder is then empty."""
    staged.mkdir(mode=0o700)
    if copied.is_dir():
        for path in sorted(copied.iterdir()):
            if not path.is_file() or not is_body_name(path.name):
                raise CLIError(f"{path}: not a message's body file, nothing replaced")
            copy_private(path, staged / path.name)
    _sync(staged)


def _move_aside(paths: list[Path], folder: Path) -> None:
    for p in paths:
        if p.exists():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(p, folder / p.name)


def run(args: argparse.Namespace) -> int:
    logs_to_stderr()
    settings = load_settings(args)
    rs = register_settings(settings)
    db = settings.storage.database
    src: Path = args.source
    manifest = _manifest(src, MANIFEST, FORMAT)
    if DATABASE not in {f["path"] for f in manifest["files"]}:
        raise CLIError(f"{src / MANIFEST}: lists no {DATABASE}")
    version = int(manifest["schema_version"])
    if version > CURRENT:
        raise CLIError(
            f"{src}: schema version {version} is newer than this gateway's ({CURRENT}): "
            "restore it with the release that made it"
        )
    keys = {k.role: k for k in key_files(settings)}
    mac_key_file = keys["register-mac.key"].path
    if args.keys_from is not None:
        _manifest(args.keys_from, KEYS_MANIFEST, KEYS_FORMAT)
        mac_key_file = args.keys_from / "register-mac.key"

    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = take_lock(db, exclusive=True)  # DatabaseRefused while a gateway has it open
    staged = db.with_name(f".{db.name}.restore")
    bodies = bodies_folder(db)
    staged_bodies = bodies.with_name(f".{bodies.name}.restore")
    # The staged copy and the files SQLite and the gateway make beside it: none outlives us.
    leftovers = (staged, *_companions(staged), lock_path(staged), write_lock_path(staged))
    try:
        for p in leftovers:
            p.unlink(missing_ok=True)
        shutil.rmtree(staged_bodies, ignore_errors=True)
        shutil.copyfile(src / DATABASE, staged)
        staged.chmod(0o600)
        result = _verify(staged, src / CHECKPOINTS, mac_key_file)
        if not result.ok or not result.proven:
            first = result.first.text if result.first else "no checkpoint covers its entries"
            raise CLIError(f"{src}: register verify fails, nothing replaced: {first}")
        _stage_bodies(src / BODIES, staged_bodies)
        _confirm(args, db)
        aside = db.with_name(f"{db.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        _move_aside([db, *_companions(db), bodies], aside)
        os.replace(staged, db)
        os.replace(staged_bodies, bodies)
        _sync(db.parent)
        cps = rs.checkpoint_dir
        if cps.is_dir():
            _move_aside(sorted(cps.glob("head-*.json")), aside / "checkpoints")
        cps.mkdir(parents=True, exist_ok=True, mode=0o700)
        for cp in sorted((src / CHECKPOINTS).glob("head-*.json")):
            copy_private(cp, cps / cp.name)
        if args.keys_from is not None:
            for role, k in keys.items():
                new = args.keys_from / role
                if k.path.exists() and digest(k.path) == digest(new):
                    continue
                _move_aside([k.path], aside / "keys")
                k.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                copy_private(new, k.path)
    finally:
        for p in leftovers:
            p.unlink(missing_ok=True)
        shutil.rmtree(staged_bodies, ignore_errors=True)
        os.close(lock)
    print(
        f"Restored {db} from {src} (taken {manifest['created_at']}, schema version "
        f"{version}): register verified, {result.count} entries, "
        f"{result.checkpoints} checkpoint(s) agree."
    )
    if aside.exists():
        print(f"What it replaced is in {aside}.")
    if version < CURRENT:
        print(f"Schema version {version} is older than this gateway's: run 'c4f-gateway upgrade'.")
    return 0


def _companions(db: Path) -> list[Path]:
    """The write-ahead log and its index: part of the database while they exist."""
    return [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
