"""``register verify``: walk the chain, then hold its head against the checkpoints.

Needs only the MAC key, never the master key: an auditor can verify without being able
to read a single personal field. Reports the first entry that was edited, deleted,
inserted or reordered (REG-2), a cut-off tail or a restored old copy (REG-4), data
removed without a purge record, checkpoints that are forged or overdue, and a delivery
that follows a hold with no approval (REG-10).
An entry whose wrapped data key changed is accepted only when a later re-seal entry
(``keys reseal register``, :mod:`gateway.register.rekey`) recorded its new digest.

It also says what it cannot prove (REG-11, REG-12): a chain shows nothing about entries cut
off its end, so with no checkpoint at all the register is not called verified, and the
entries written since the newest checkpoint are counted as not yet checkpointed.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.register import checkpoint
from gateway.register.codec import (
    GENESIS,
    EntryFields,
    KeyUnavailable,
    MacKey,
    data_digest,
    entry_mac,
)
from gateway.register.hold_trail import HoldTrail
from gateway.store import Store

COLUMNS = (
    "seq, epoch, at_us, kind, ref, queue_id, size, sha256, public, data_sha256, sealed,"
    " entry_key, mac"
)
_PAGE = 5000
_REPORT = 500  # entries between two progress reports
_DIAGNOSE = 50  # failed entries explained in detail; the rest are listed plainly
CHECKPOINT_GRACE = 2 * 86400.0  # checkpoints are written at least daily


@dataclass(frozen=True)
class Problem:
    seq: int | None  # the entry it names (None: about the register as a whole)
    text: str


@dataclass
class VerifyResult:
    count: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checkpoints: int = 0
    checkpointed: int = 0  # entries the newest checkpoint covers

    @property
    def ok(self) -> bool:
        """Nothing was found wrong (see :attr:`proven` for what could not be checked)."""
        return not self.problems

    @property
    def proven(self) -> bool:
        """Nothing was found wrong and a checkpoint exists, so a cut-off tail would show."""
        return self.ok and (self.count == 0 or self.checkpoints > 0)

    @property
    def uncheckpointed(self) -> int:
        """Entries written after the newest checkpoint: cutting them off would go unseen."""
        return max(self.count - self.checkpointed, 0) if self.checkpoints else self.count

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def fields_of(row: Any) -> EntryFields:
    return EntryFields(
        seq=row["seq"],
        epoch=row["epoch"],
        at_us=row["at_us"],
        kind=row["kind"],
        ref=row["ref"],
        queue_id=row["queue_id"],
        size=row["size"],
        sha256=row["sha256"],
        public=row["public"],
        data_sha256=bytes(row["data_sha256"]),
    )


def purged_seqs(public: str) -> set[int]:
    """The entries a purge record lists, stored as ``[[first, last], ...]`` ranges."""
    try:
        ranges = json.loads(public).get("purged", [])
        return {s for first, last in ranges for s in range(int(first), int(last) + 1)}
    except (ValueError, TypeError, AttributeError):
        return set()


def resealed_digests(public: str) -> dict[int, bytes]:
    """What a re-seal entry (``keys reseal register``) records: each entry whose data key
    it wrapped again under a new master key, with the digest of its data afterwards. The
    entry's own MAC covers the list, so a re-wrapped key is told from an altered one."""
    try:
        found = json.loads(public).get("resealed", [])
        return {int(seq): bytes.fromhex(digest) for seq, digest in found}
    except (ValueError, TypeError, AttributeError):
        return {}


class _Walk:
    def __init__(self, mac_key: MacKey) -> None:
        self.mac_key = mac_key
        self.result = VerifyResult()
        self.macs: dict[int, bytes] = {}
        self.first_with_mac: dict[bytes, int] = {}
        self.failed: list[tuple[EntryFields, bytes]] = []
        self.purged: set[int] = set()
        self.listed: set[int] = set()
        self.unchecked: list[int] = []
        self.altered: dict[int, bytes] = {}  # seq -> digest of its data, when not as recorded
        self.resealed: dict[int, bytes] = {}  # seq -> digest a later re-seal entry recorded
        self.expected = 1
        self.prev = GENESIS
        self.last_epoch = 0
        self.oldest_at = self.newest_at = 0.0
        self.epoch_starts: list[tuple[int, int]] = []  # (first seq, epoch) at each change
        self.holds = HoldTrail()

    def row(self, row: Any) -> None:
        f, mac, problems = fields_of(row), bytes(row["mac"]), self.result.problems
        gap = f.seq != self.expected
        if gap:
            missing = (
                f"entry {self.expected} is missing (deleted)"
                if f.seq == self.expected + 1
                else f"entries {self.expected} to {f.seq - 1} are missing (deleted)"
            )
            problems.append(Problem(self.expected, missing))
        if f.epoch < self.last_epoch:
            problems.append(
                Problem(
                    f.seq,
                    f"entry {f.seq} carries an earlier key epoch than "
                    "the entry before it (inserted or reordered)",
                )
            )
        try:
            key = self.mac_key.for_epoch(f.epoch)
        except KeyUnavailable:
            self.unchecked.append(f.seq)
        else:
            # After a gap the predecessor's MAC is unknown: the gap itself is the finding.
            if not gap and not hmac.compare_digest(entry_mac(key, f, self.prev), mac):
                self.failed.append((f, mac))
        sealed, wrapped = row["sealed"], row["entry_key"]
        if sealed is None or wrapped is None:
            self.purged.add(f.seq)
        else:
            digest = data_digest(sealed, wrapped)
            if not hmac.compare_digest(digest, f.data_sha256):
                self.altered[f.seq] = digest  # unless a later re-seal entry recorded it
        if f.kind == "purge":
            self.listed |= purged_seqs(f.public)
        elif f.kind == "admin":
            self.resealed.update(resealed_digests(f.public))
        unapproved = self.holds.row(f)
        if unapproved is not None:
            problems.append(Problem(f.seq, unapproved))
        self.macs[f.seq] = mac
        self.first_with_mac.setdefault(mac, f.seq)
        self.prev, self.expected = mac, f.seq + 1
        if not self.epoch_starts or f.epoch > self.epoch_starts[-1][1]:
            self.epoch_starts.append((f.seq, f.epoch))
        self.last_epoch = max(self.last_epoch, f.epoch)
        at = f.at_us / 1e6
        self.oldest_at = at if not self.oldest_at else min(self.oldest_at, at)
        self.newest_at = max(self.newest_at, at)

    def diagnose(self, f: EntryFields, mac: bytes) -> Problem:
        copied = self.first_with_mac.get(mac)
        if copied is not None and copied != f.seq:
            return Problem(f.seq, f"entry {f.seq} is a copy of entry {copied} (replayed)")
        key = self.mac_key.for_epoch(f.epoch)
        for s in (f.seq - 1, f.seq + 1):
            moved = dataclasses.replace(f, seq=s)
            prevs = {GENESIS} if s == 1 else {self.macs.get(x) for x in range(s - 2, s + 2)}
            for prev in prevs - {None}:
                assert prev is not None
                if hmac.compare_digest(entry_mac(key, moved, prev), mac):
                    return Problem(
                        f.seq,
                        f"entry {f.seq} holds the record written as entry {s} "
                        "(entries were reordered, inserted or deleted)",
                    )
        return Problem(
            f.seq, f"entry {f.seq} was altered or inserted: its content does not match its MAC"
        )


def verify(
    store: Store,
    mac_key: MacKey,
    checkpoint_dir: Path,
    now: float,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """Check the whole register; ``progress(entries checked, entries)`` is called as the
    walk goes on, and last with both equal."""
    walk = _Walk(mac_key)
    after = done = 0
    total = int(store.query("SELECT count(*) FROM register")[0][0]) if progress else 0
    while True:
        rows = store.query(
            f"SELECT {COLUMNS} FROM register WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
            (after, _PAGE),
        )
        for row in rows:
            walk.row(row)
            done += 1
            if progress is not None and done % _REPORT == 0:
                progress(done, max(total, done))  # entries written meanwhile are walked too
        if len(rows) < _PAGE:
            break
        after = rows[-1]["seq"]
    if progress is not None:
        progress(done, done)
    result = walk.result
    result.count = walk.expected - 1
    for i, (f, mac) in enumerate(walk.failed):
        result.problems.append(
            walk.diagnose(f, mac)
            if i < _DIAGNOSE
            else Problem(f.seq, f"entry {f.seq} does not match its MAC")
        )
    for seq, digest in walk.altered.items():
        recorded = walk.resealed.get(seq)
        if recorded is None or not hmac.compare_digest(recorded, digest):
            result.problems.append(Problem(seq, f"entry {seq}: its encrypted data was altered"))
    for seq in sorted(walk.purged - walk.listed):
        result.problems.append(
            Problem(seq, f"entry {seq}: its data was removed without a purge record")
        )
    if walk.unchecked:
        result.notes.append(
            f"{len(walk.unchecked)} entries (from {walk.unchecked[0]} to {walk.unchecked[-1]}) "
            "were written under earlier MAC keys that this key cannot derive (forward "
            "integrity); verify them with the key file kept offline (--mac-key-file)"
        )
    unrecorded = walk.holds.note()
    if unrecorded is not None:
        result.notes.append(unrecorded)
    _checkpoints(walk, checkpoint_dir, now)
    result.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return result


def _against(walk: _Walk, cp: checkpoint.Checkpoint, count: int) -> list[Problem]:
    """What one checkpoint says is wrong with the register (REG-4, REG-9)."""
    out = []
    if cp.count > count:
        out.append(
            Problem(
                count + 1,
                (
                    f"the register ends at entry {count} but checkpoint {cp.name} (written "
                    f"{cp.written_at}) recorded {cp.count} entries: entries {count + 1} to "
                    f"{cp.count} were cut off, or an older copy of the database was restored"
                ),
            )
        )
    elif cp.count and walk.macs.get(cp.count) != cp.head:
        out.append(
            Problem(
                cp.count,
                (
                    f"entry {cp.count} differs from checkpoint {cp.name}: the register was "
                    "rewritten up to it, or an older copy of the database was restored"
                ),
            )
        )
    later = [s for s, e in walk.epoch_starts if e > cp.epoch and s <= cp.count]
    if later:
        # Entries that the checkpoint's key wrote now claim a later key: re-keyed forgeries.
        out.append(
            Problem(
                later[0],
                (
                    f"entry {later[0]} claims a MAC key newer than checkpoint {cp.name}, which "
                    f"covers it: entries up to {cp.count} were rewritten"
                ),
            )
        )
    return out


def _checkpoints(walk: _Walk, directory: Path, now: float) -> None:
    result = walk.result
    found, problems, notes = checkpoint.load(directory, walk.mac_key)
    result.problems += [Problem(None, p) for p in problems]
    result.notes += notes
    result.checkpoints = len(found)
    result.checkpointed = max((cp.count for cp in found), default=0)
    count = result.count
    for cp in found:
        result.problems += _against(walk, cp, count)
    if count == 0:
        return
    newest = max((datetime.fromisoformat(cp.written_at).timestamp() for cp in found), default=0.0)
    if not found and now - walk.oldest_at > CHECKPOINT_GRACE:
        # Entries this old with no checkpoint: they were never written, or were removed.
        days = int((now - walk.oldest_at) // 86400)
        result.problems.append(
            Problem(
                None,
                (
                    f"no checkpoint in {directory}: entries go back {days} days, so "
                    "checkpoints were never written or were removed"
                ),
            )
        )
    elif found and walk.newest_at - newest > CHECKPOINT_GRACE:
        when = datetime.fromtimestamp(newest).astimezone().strftime("%Y-%m-%d %H:%M")
        result.problems.append(
            Problem(
                None,
                (
                    f"no checkpoint since {when}: later entries are not protected against being "
                    "cut off; checkpoints are overdue"
                ),
            )
        )
