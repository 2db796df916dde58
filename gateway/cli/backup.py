"""``c4f-gateway backup``: a consistent copy of the database, the register checkpoints and
the body files of large queued messages.

The database is copied with SQLite's online backup API while ``serve`` goes on: one read
transaction, so the copy is the database as of one commit, and writers are not held up
(WAL). The checkpoints are copied first: each then covers no more than the copy holds, so
``register verify`` of the copy against them passes. A manifest (``manifest.json``) says
what was copied, when, by which version of the gateway and at which schema version, with
each file's size and SHA-256; ``restore`` checks it before it replaces anything.

A message over 64 KiB keeps its sealed body in a file of its own beside the database
(:mod:`gateway.queue.bodies`), and the backup's ``bodies/`` holds the file of every queue
row in the copy. A file is whole once it has its name and is unlinked only after its row's
deletion is committed, so the files are copied in two passes around the database copy:
every file there is before it, then, after it, the file of any row in the copy not yet
taken, and those taken whose row is not in the copy are dropped again. A row in the copy
can then lack its file only if its message was accepted and delivered while the backup
ran (its file came after the first pass and went before the second): restored, that
message is set aside as corrupt when delivery opens it, never sent, and it was delivered
already. The files are sealed under keys kept only in their rows' sealed envelopes: they
are no more readable without the key files than the database is.

The key files go only where ``--keys-to`` says, a folder of their own (0700, files 0600)
with its own manifest: whoever holds a copy of the database and its keys can read every
message and contact in it, so the two are kept apart (README, "Backups").
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, existing_database, load_settings, logs_to_stderr
from gateway.cli.progress import add_quiet_arg, progress_for
from gateway.queue.bodies import bodies_folder
from gateway.settings import Settings
from gateway.settings.register import register_settings
from gateway.store import Store

FORMAT = "c4f-gateway-backup/1"
KEYS_FORMAT = "c4f-gateway-keys/1"
MANIFEST = "manifest.json"
KEYS_MANIFEST = "keys-manifest.json"
DATABASE = "gateway.db"
CHECKPOINTS = "checkpoints"
BODIES = "bodies"


@dataclass(frozen=True)
class KeyFile:
    role: str  # the name in a keys folder
    setting: str  # the config key that names it
    path: Path  # where this gateway's config puts it


def key_files(settings: Settings) -> list[KeyFile]:
    rs = register_settings(settings)
    return [
        KeyFile("spool.key", "storage.spool_key_file", settings.storage.spool_key_file),
        KeyFile("register.key", "register.key_file", rs.key_file),
        KeyFile("register-mac.key", "register.mac_key_file", rs.mac_key_file),
    ]


def gateway_version() -> str:
    try:
        return importlib.metadata.version("c4f-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(folder: Path, path: Path) -> dict[str, Any]:
    return {
        "path": path.relative_to(folder).as_posix(),
        "size": path.stat().st_size,
        "sha256": digest(path),
    }


def new_folder(path: Path) -> None:
    """An empty, private folder (refuses one with anything in it)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CLIError(f"{path}: exists and is not an empty folder; give a new one")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def copy_private(source: Path, target: Path) -> None:
    """Copy a file that only its owner may read: created 0600, never readable by others.
    The source is opened first: if it is gone (FileNotFoundError), no target is made."""
    with source.open("rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
            f.flush()
            os.fsync(f.fileno())


def is_body_name(name: str) -> bool:
    """A queue ID, as body files are named: never a path, nor a file being written
    (``.tmp-QUEUEID``, not a body until it is renamed)."""
    return name.isalnum() and name.isascii()


def _copy_body(source: Path, target: Path) -> bool:
    """Copy one body file; False if it went first (its message was delivered)."""
    try:
        copy_private(source, target)
    except FileNotFoundError:
        return False
    return True


def _queue_ids(database: Path) -> set[str]:
    """The queue IDs in a copy of the database (none if it has no queue yet)."""
    conn = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue'"
        ).fetchone():
            return set()
        return {str(row[0]) for row in conn.execute("SELECT id FROM queue")}
    finally:
        conn.close()


def _bodies_before(source: Path, copied: Path) -> set[str]:
    """First pass, before the database copy: every body file there is."""
    taken: set[str] = set()
    if not source.is_dir():
        return taken  # no message has been large enough yet
    for path in sorted(source.iterdir()):
        if is_body_name(path.name) and path.is_file() and _copy_body(path, copied / path.name):
            taken.add(path.name)
    return taken


def _bodies_after(source: Path, copied: Path, taken: set[str], database: Path) -> None:
    """Second pass, after the database copy: exactly the files of the copy's rows."""
    rows = _queue_ids(database)
    for name in sorted(rows - taken):
        path = source / name
        if is_body_name(name) and path.is_file() and _copy_body(path, copied / name):
            taken.add(name)
    for name in sorted(taken - rows):  # delivered before the copy, or a crash's leftover
        (copied / name).unlink()
        taken.discard(name)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def take(
    store: Store,
    settings: Settings,
    to: Path,
    keys_to: Path | None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write a backup of ``store`` into the new folder ``to`` (and the key files into
    ``keys_to``); returns the manifest, which is written last. ``progress(pages copied,
    pages)`` follows the copy of the database, most of the work."""
    new_folder(to)
    if keys_to is not None:
        if keys_to.resolve() == to.resolve() or keys_to.resolve().is_relative_to(to.resolve()):
            raise CLIError(f"{keys_to}: the keys must go to a folder apart from the backup")
        new_folder(keys_to)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    # Checkpoints first: none of them can then cover more than the database copy holds.
    copied_cps = to / CHECKPOINTS
    copied_cps.mkdir(mode=0o700)
    source_cps = register_settings(settings).checkpoint_dir
    if source_cps.is_dir():
        for cp in sorted(source_cps.glob("head-*.json")):
            copy_private(cp, copied_cps / cp.name)
    # Body files around the database copy: see the module's docstring.
    copied_bodies = to / BODIES
    copied_bodies.mkdir(mode=0o700)
    source_bodies = bodies_folder(store.path)
    taken = _bodies_before(source_bodies, copied_bodies)
    store.backup_to(to / DATABASE, progress)
    (to / DATABASE).chmod(0o600)
    _bodies_after(source_bodies, copied_bodies, taken, to / DATABASE)
    files = [describe(to, to / DATABASE)]
    files += [describe(to, p) for p in sorted(copied_cps.iterdir())]
    files += [describe(to, p) for p in sorted(copied_bodies.iterdir())]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": when,
        "gateway_version": gateway_version(),
        "schema_version": store.version,
        "source_database": str(store.path),
        "keys": "in a separate folder" if keys_to is not None else "not included",
        "files": files,
    }
    if keys_to is not None:
        keys = []
        for k in key_files(settings):
            if not k.path.exists():
                raise CLIError(f"{k.path}: {k.setting}: no such key file")
            copy_private(k.path, keys_to / k.role)
            keys.append({**describe(keys_to, keys_to / k.role), "setting": k.setting})
        write_json(
            keys_to / KEYS_MANIFEST,
            {"format": KEYS_FORMAT, "created_at": when, "backup": str(to), "files": keys},
        )
    write_json(to / MANIFEST, manifest)
    return manifest


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backup",
        help="copy the database, its body files and register checkpoints (safe while serve runs)",
        description=(
            "Write a consistent copy of the database (SQLite online backup, safe while "
            "serve runs), the register checkpoints and the sealed body files of the large "
            "messages it queues into a new folder, with a manifest of sizes and SHA-256 "
            "digests. Key files are copied only with --keys-to, into a separate folder: "
            "store the two apart, since the keys open the database."
        ),
    )
    add_config_arg(p)
    p.add_argument(
        "--to",
        type=Path,
        required=True,
        metavar="DIR",
        help="a new or empty folder for the copy and its manifest",
    )
    p.add_argument(
        "--keys-to",
        type=Path,
        metavar="DIR",
        help="also copy the key files into this new folder (kept apart from the backup)",
    )
    add_quiet_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logs_to_stderr()
    settings = load_settings(args)
    db = existing_database(settings)
    store = Store(db, check_version=False)
    try:
        with progress_for(args, "backup: database", "pages") as progress:
            manifest = take(store, settings, args.to, args.keys_to, progress)
    finally:
        store.close()
    size = sum(f["size"] for f in manifest["files"])
    counts = {CHECKPOINTS: 0, BODIES: 0}
    for f in manifest["files"]:
        folder = f["path"].partition("/")[0]
        if folder in counts:
            counts[folder] += 1
    print(
        f"Backed up {db} (schema version {manifest['schema_version']}), "
        f"{counts[CHECKPOINTS]} checkpoint(s) and {counts[BODIES]} body file(s) to "
        f"{args.to}: {size} bytes."
    )
    if args.keys_to is not None:
        print(f"Key files in {args.keys_to}: keep them apart from the backup.")
    else:
        print("Key files not included (--keys-to DIR): the backup cannot be read without them.")
    return 0
