"""Purge: crypto-shred entries past the retention period, unless they are on hold.

Policy, "Storage of information": information about families is disposed of after three
years unless a safeguarding or child-protection issue arose or anyone was injured. An
original entry and all its follow-ups go together, aged from the original. A record is
kept while a retention hold covers it (:mod:`gateway.register.retention`): its own (a
``[safeguarding]``, ``[child-protection]`` or ``[injury]`` tag, ``register annotate
--retention-hold CATEGORY``), a family hold on its family reference (``register
hold-family``), or the own hold of another record of its family. The result says what
was kept and why: category and hold, with the count.

Purging destroys the per-entry data key and the ciphertext (``secure_delete`` zeroes
the freed space, and the WAL is truncated afterwards); the plain fields and the digest
stay, so the chain still verifies (REG-8). Each purge is itself an entry listing what
it destroyed; running it again finds nothing more to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from gateway.register import index
from gateway.register.fold import build_records
from gateway.register.ledger import PurgeRefused, Register, RegisterError
from gateway.register.record import Record
from gateway.register.retention import FAMILY_HOLD

log = structlog.get_logger("gateway.register")

DAY = 86400.0
_CHUNK = 500
# The entries that place a retention hold on records already recorded: a follow-up to one
# record, or a hold on a whole family.
HOLDING = ("annotation", FAMILY_HOLD)


@dataclass(frozen=True)
class PurgeResult:
    cutoff: float
    dry_run: bool
    records: list[int] = field(default_factory=list)  # originals purged (or to be purged)
    entries: list[int] = field(default_factory=list)  # every entry destroyed with them
    kept_on_hold: list[int] = field(default_factory=list)  # old enough, but held
    # Why they were kept: "category, own hold" (or "family hold (entry N)", ...) -> records
    kept_why: dict[str, list[int]] = field(default_factory=dict)
    entry: int | None = None  # the purge's own register entry


def ranges(seqs: Iterable[int]) -> list[list[int]]:
    """[1, 2, 3, 7] -> [[1, 3], [7, 7]]: how a purge entry lists what it destroyed."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def purge(
    register: Register,
    *,
    actor: str,
    dry_run: bool = False,
    only: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PurgeResult:
    """Purge what is due (or only the record holding entry ``only``, whatever its age).
    ``progress(entries read, entries)``: the reading of the whole register, which is
    most of the work (destroying what is due is a few statements)."""
    now = register.clock()
    cutoff = now - register.retention_days * DAY
    entries = register.entries(progress)
    high = max((e.seq for e in entries), default=0)
    records = build_records(entries)
    why: dict[str, list[int]] = {}
    if only is not None:
        chosen = [r for r in records if r.seq == only or any(f.seq == only for f in r.followups)]
        if not chosen:
            raise RegisterError(f"there is no register entry {only}")
        if chosen[0].retention_hold:
            _refuse(register, chosen[0], actor)
        due, held = chosen, []
    else:
        old = [r for r in records if r.at < cutoff and not r.purged]
        due = [r for r in old if not r.retention_hold]
        held = [r.seq for r in old if r.retention_hold]
        for r in old:
            if r.hold is not None:
                why.setdefault(f"{r.hold.category}, {r.hold.source}", []).append(r.seq)
    doomed = sorted(e.seq for r in due for e in (r.entry, *r.followups) if not e.purged)
    result = PurgeResult(
        cutoff=cutoff,
        dry_run=dry_run,
        records=[r.seq for r in due if not r.purged],
        entries=doomed,
        kept_on_hold=held,
        kept_why=why,
    )
    if dry_run or not doomed:
        return result
    with register.store.transaction() as conn:
        # A hold placed after we read the register must win: start again if one came in.
        late = conn.execute(
            "SELECT count(*) FROM register WHERE seq > ? AND kind IN (?, ?)", (high, *HOLDING)
        ).fetchone()[0]
        if late:
            raise RegisterError("the register changed while purging; run the purge again")
        for i in range(0, len(doomed), _CHUNK):
            chunk = doomed[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE register SET sealed = NULL, entry_key = NULL WHERE seq IN ({marks})",  # noqa: S608
                chunk,
            )
            conn.execute(
                f"DELETE FROM register_thread WHERE seq IN ({marks})",  # noqa: S608
                chunk,
            )
        register.reindex(conn, [r.seq for r in due])  # their index rows: purged, no terms
        index.forget_unused(conn)
        seq = register.append(
            conn,
            kind="purge",
            at=now,
            personal={"actor": actor, "records": len(result.records), "entries": len(doomed)},
            public={"purged": ranges(doomed), "cutoff_us": round(cutoff * 1e6)},
        )
    # Old pages may survive in the write-ahead log until it is checkpointed and truncated.
    register.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    log.info(
        "register_purged",
        records=len(result.records),
        entries=len(doomed),
        entry=seq,
        kept_on_hold=len(held),
    )
    return PurgeResult(
        cutoff=cutoff,
        dry_run=False,
        records=result.records,
        entries=doomed,
        kept_on_hold=held,
        kept_why=why,
        entry=seq,
    )


def _refuse(register: Register, record: Record, actor: str) -> None:
    log.warning("register_purge_refused", entry=record.seq, reason="retention hold")
    with register.store.transaction() as conn:
        register.record_admin(
            conn, actor, "purge refused", {"entry": record.seq, "reason": "retention hold"}
        )
    hold = record.hold
    why = f"{hold.category}, {hold.source}" if hold else "retention hold"
    raise PurgeRefused(
        f"entry {record.seq} is under a retention hold ({why}) and must be kept; "
        "release the hold first if it no longer applies"
    )
