"""Family-level retention holds: ``register hold-family`` and ``register release-family``.

A family hold is an entry of its own (kind ``family-hold``): the family reference, the
category, the reason, who set it and its review date. While it stands it keeps every
record with that family reference beyond the three-year retention period, including
records tagged or linked to the family after it was set (the fold in
:mod:`gateway.register.fold` applies it). A release is a follow-up to the hold, with its
reason; a newer hold on the same family supersedes the older one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import structlog

from gateway.register.fields import FAMILY_REF, RegisterError
from gateway.register.ledger import Register
from gateway.register.record import Record
from gateway.register.retention import CATEGORIES, FAMILY_HOLD, default_review_on, local_day

log = structlog.get_logger("gateway.register")


def hold_family(
    register: Register,
    family: str,
    *,
    actor: str,
    category: str,
    reason: str,
    review_on: str | None = None,
) -> int:
    """Place a hold on every record of ``family``; returns the hold's entry number."""
    if not FAMILY_REF.match(family):
        raise RegisterError(f"{family!r} is not a family reference (letters, digits, . _ / -)")
    if category not in CATEGORIES:
        raise RegisterError(f"the hold category must be one of {', '.join(CATEGORIES)}")
    reason = reason.strip()
    if not reason:
        raise RegisterError("a family hold needs a reason")
    now = register.clock()
    review = _review_date(review_on, now) if review_on else default_review_on(now)
    personal = {
        "actor": actor,
        "action": "hold",
        "family": family,
        "category": category,
        "reason": reason,
        "review_on": review,
    }
    with register.store.transaction() as conn:
        seq = register.append(conn, kind=FAMILY_HOLD, at=now, personal=personal)
    log.info("register_family_hold", entry=seq, category=category)
    return seq


def placed_words(family: str, category: str, seq: int) -> str:
    """What the CLI and the console say once a family hold is placed."""
    return f"Family {family} is on a retention hold ({category}): entry {seq}."


def released_words(family: str, seq: int) -> str:
    """What the CLI and the console say once a family hold is released."""
    return f"Released the retention hold on family {family}: entry {seq}."


def release_family(register: Register, family: str, *, actor: str, reason: str) -> int:
    """Release the standing hold on ``family``; returns the release's entry number.

    Older holds it superseded are released with it, each by a follow-up of its own, so
    that every hold entry, read alone (as the register's index reads it), says released."""
    reason = reason.strip()
    if not reason:
        raise RegisterError("releasing a family hold needs a reason")
    standing = list(_standing(register, family))
    if not standing:
        raise RegisterError(f"family {family} has no family hold standing")
    held, *older = standing
    personal = {"actor": actor, "action": "release", "family": held.family, "reason": reason}
    now = register.clock()
    with register.store.transaction() as conn:
        for r in reversed(older):  # oldest first, as they were placed
            register.append(conn, kind=FAMILY_HOLD, at=now, personal=personal, ref=r.seq)
        seq = register.append(conn, kind=FAMILY_HOLD, at=now, personal=personal, ref=held.seq)
    log.info("register_family_hold_released", entry=held.seq, followup=seq)
    return seq


def standing_hold(register: Register, family: str) -> Record | None:
    """The hold standing on ``family`` (the newest one not released), or None."""
    return next(_standing(register, family), None)


def _standing(register: Register, family: str) -> Iterator[Record]:
    """The holds on ``family`` not released, newest first: the standing one, then those it
    superseded (as the fold finds them). Reads and opens only the family-hold entries and
    their follow-ups, not the whole register."""
    fam = family.lower()
    seqs = register.store.query(
        "SELECT seq FROM register WHERE kind = ? AND ref = 0 ORDER BY seq DESC", (FAMILY_HOLD,)
    )
    for (seq,) in seqs:
        r = register.thread_record(seq)
        if r is not None and r.family.lower() == fam and r.own_hold is not None:
            yield r


def _review_date(text: str, now: float) -> str:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise RegisterError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if day <= local_day(now):
        raise RegisterError(f"the review date {text} must be after today")
    return day.isoformat()
