"""The register's duties counted in its index (:mod:`.index`): disclosures whose "person
informed" is overdue, retention holds due for review. The console's register list shows
them (:mod:`gateway.web.register_duties`) on every request, so they must not fold the
whole register."""

from __future__ import annotations

from typing import Any

from gateway.register.index_read import scoped
from gateway.register.ledger import Register
from gateway.register.retention import FAMILY_HOLD
from gateway.register.scope import RegisterScope


def duty_counts(
    register: Register, scope: RegisterScope | None, now: float, today: str, inform_days: int
) -> tuple[int, int]:
    """(disclosures whose "person informed" is overdue at ``now``, retention holds due
    for review by ``today``) that ``scope`` shows. A family hold superseded by a newer
    one of its family is not counted (as the fold)."""
    args: list[Any] = [now - inform_days * 86400.0]
    seen = scoped(register, scope, args)
    overdue = register.store.query(
        "SELECT count(*) FROM register_index i INDEXED BY register_index_inform"  # noqa: S608
        f" WHERE i.inform_from IS NOT NULL AND i.inform_from <= ? AND {seen}",
        args,
    )[0][0]
    args = [today, FAMILY_HOLD, FAMILY_HOLD]
    seen = scoped(register, scope, args)
    review = register.store.query(
        "SELECT count(*) FROM register_index i INDEXED BY register_index_review"  # noqa: S608
        " WHERE i.review_on IS NOT NULL AND i.review_on <= ? AND NOT (i.kind = ? AND EXISTS"
        " (SELECT 1 FROM register_index h WHERE h.kind = ? AND h.family = i.family"
        f" AND h.review_on IS NOT NULL AND h.seq > i.seq)) AND {seen}",
        args,
    )[0][0]
    return int(overdue), int(review)
