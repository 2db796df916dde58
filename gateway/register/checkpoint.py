"""Signed head files: the register's count and newest MAC, written outside the database.

A hash chain cannot show that its newest entries were cut off, or that an older backup
was put back (Ma & Tsudik): only a commitment held elsewhere can. A checkpoint is
``head-YYYY-MM-DD.json`` (one file per UTC day, replaced during the day, so the files
rotate daily; ``head-YYYY-MM-DD-eN.json`` when the MAC key evolves) holding the entry
count, the MAC of that entry, the key epoch and the time, signed with a key derived
from the register MAC key. Copy the folder off the
machine (backup, another host): a copy the attacker cannot reach is what makes it work.

A checkpoint is only written when the register still contains the previous one's head
(count and MAC), so a truncated register is reported instead of being blessed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.register.codec import KeyUnavailable, MacKey, encode

FORMAT = "c4f-register-checkpoint/1"
_SIGNING = b"c4f-register-checkpoint-key"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    count: int
    head: bytes
    epoch: int
    written_at: str  # ISO 8601, UTC
    signature_checked: bool  # False when the key of its epoch is no longer held

    @property
    def name(self) -> str:
        return self.path.name


def _signature(mac_key: MacKey, count: int, head: bytes, epoch: int, written_at: str) -> bytes:
    key = hmac.new(mac_key.for_epoch(epoch), _SIGNING, hashlib.sha256).digest()
    return hmac.new(key, encode(FORMAT, count, head, epoch, written_at), hashlib.sha256).digest()


def write(directory: Path, count: int, head: bytes, mac_key: MacKey, now: float) -> Path:
    """Write today's head file atomically (temp file, fsync, rename, fsync the folder)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    when = datetime.fromtimestamp(now, UTC)
    written_at = when.isoformat(timespec="microseconds")
    doc = {
        "format": FORMAT,
        "count": count,
        "head": head.hex(),
        "epoch": mac_key.epoch,
        "written_at": written_at,
        "signature": _signature(mac_key, count, head, mac_key.epoch, written_at).hex(),
    }
    # One file per day; with evolving keys, one per day and key epoch, so the checkpoint
    # that closes an epoch (signed with its key) is never replaced.
    epoch = f"-e{mac_key.epoch}" if mac_key.epoch else ""
    path = directory / f"head-{when:%Y-%m-%d}{epoch}.json"
    tmp = directory / f".{path.name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def written_on(directory: Path, now: float) -> bool:
    """Whether a checkpoint was already written on the UTC day of ``now``."""
    day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    return any(directory.glob(f"head-{day}*.json"))


def load(directory: Path, mac_key: MacKey) -> tuple[list[Checkpoint], list[str], list[str]]:
    """All head files: (usable checkpoints, problems, notes). Forged ones are problems."""
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    notes: list[str] = []
    paths: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        paths = sorted(directory.glob("head-*.json"))
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc["format"] != FORMAT:
                raise ValueError("unknown format")
            count, epoch, written_at = int(doc["count"]), int(doc["epoch"]), str(doc["written_at"])
            head = bytes.fromhex(doc["head"])
            signature = bytes.fromhex(doc["signature"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"checkpoint {path.name} is unreadable ({type(exc).__name__})")
            continue
        try:
            expected = _signature(mac_key, count, head, epoch, written_at)
        except KeyUnavailable:
            notes.append(
                f"checkpoint {path.name} was signed under key epoch {epoch}, which this key no "
                "longer derives; check it with the key file kept offline"
            )
            checkpoints.append(Checkpoint(path, count, head, epoch, written_at, False))
            continue
        if not hmac.compare_digest(expected, signature):
            problems.append(
                f"checkpoint {path.name}: its signature does not match (the file was edited "
                "or forged)"
            )
            continue
        checkpoints.append(Checkpoint(path, count, head, epoch, written_at, True))
    return checkpoints, problems, notes
