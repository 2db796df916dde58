"""``c4f-gateway backup``: a consistent copy of the database and the register checkpoints.

The database is copied with SQLite's online backup API while ``serve`` goes on: one read
transaction, so the copy is the database as of one commit, and writers are not held up
(WAL). The checkpoints are copied first: each then covers no more than the copy holds, so
``register verify`` of the copy against them passes. A manifest (``manifest.json``) says
what was copied, when, by which version of the gateway and at which schema version, with
each file's size and SHA-256; ``restore`` checks it before it replaces anything.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, existing_database, load_settings, logs_to_stderr
from gateway.cli.progress import add_quiet_arg, progress_for
from gateway.settings import Settings
from gateway.settings.register import register_settings
from gateway.store import Store

FORMAT = "c4f-gateway-backup/1"
KEYS_FORMAT = "c4f-gateway-keys/1"
MANIFEST = "manifest.json"
KEYS_MANIFEST = "keys-manifest.json"
DATABASE = "gateway.db"
CHECKPOINTS = "checkpoints"


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
    """Copy a file that only its owner may read: created 0600, never readable by others."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(source.read_bytes())
        f.flush()
        os.fsync(f.fileno())


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
    store.backup_to(to / DATABASE, progress)
    (to / DATABASE).chmod(0o600)
    files = [describe(to, to / DATABASE)]
    files += [describe(to, p) for p in sorted(copied_cps.iterdir())]
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
        help="copy the database and register checkpoints (safe while serve runs)",
        description=(
            "Write a consistent copy of the database (SQLite online backup, safe while "
            "serve runs) and the register checkpoints into a new folder, with a manifest "
            "of sizes and SHA-256 digests. Key files are copied only with --keys-to, into "
            "a separate folder: store the two apart, since the keys open the database."
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
    print(
        f"Backed up {db} (schema version {manifest['schema_version']}) and "
        f"{len(manifest['files']) - 1} checkpoint(s) to {args.to}: {size} bytes."
    )
    if args.keys_to is not None:
        print(f"Key files in {args.keys_to}: keep them apart from the backup.")
    else:
        print("Key files not included (--keys-to DIR): the backup cannot be read without them.")
    return 0
