"""Reading through the register's index (:mod:`.index`): one page of the list, its count,
and the summary's figures, without decrypting the register.

:func:`where` turns the list's :class:`~gateway.register.view.Filters` and a viewer's
:class:`~gateway.register.scope.RegisterScope` into SQL over ``register_index``; only the
records of the page shown are then read and folded, with their follow-ups. A filter the
index does not know (one added to ``Filters`` later) makes :func:`where` answer None, and
the caller reads the register whole, as before: slower, never wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.register import index
from gateway.register.ledger import Register
from gateway.register.retention import FAMILY_HOLD
from gateway.register.scope import RegisterScope
from gateway.register.verify import COLUMNS
from gateway.register.view import Filters, Record, build_records

# The Filters fields the index answers (``now`` is only the clock of the others).
INDEXED = frozenset(
    (
        "since",
        "until",
        "staff",
        "recipient",
        "organisation",
        "family",
        "consent",
        "incomplete",
        "refused",
        "retention_hold",
        "held_for_approval",
        "include_notices",
        "kinds",
        "now",
    )
)
# Kept beyond retention: a hold of its own, or one on a record of its family.
RETAINED = (
    "(i.own_hold = 1 OR (i.family IS NOT NULL AND i.family IN"
    " (SELECT family FROM register_index WHERE own_hold = 1 AND family IS NOT NULL)))"
)


def _in(column: str, ids: list[int], args: list[Any]) -> str:
    if not ids:
        return "0"
    args.extend(ids)
    return f"{column} IN ({','.join('?' * len(ids))})"


def _named(register: Register, what: str, value: str) -> list[int]:
    """The terms ``value`` is stored under (one per key it was hashed with)."""
    hashes = index.term_lookups(register.keyring, what, value)
    marks = ",".join("?" * len(hashes))
    rows = register.store.query(
        f"SELECT id FROM register_term WHERE what = ? AND lookup IN ({marks})",  # noqa: S608
        (what, *hashes),
    )
    return [int(r[0]) for r in rows]


def names(register: Register, what: str) -> dict[int, str]:
    """Every sealed term of one kind, opened: a few hundred organisations or addresses."""
    rows = register.store.query("SELECT id, sealed FROM register_term WHERE what = ?", (what,))
    return {int(r[0]): index.open_term(register.keyring, what, bytes(r[1])) for r in rows if r[1]}


def _containing(register: Register, what: str, text: str) -> list[int]:
    return [i for i, v in names(register, what).items() if text.lower() in v.lower()]


def indexed(filters: Filters) -> bool:
    return all(
        f.name in INDEXED or getattr(filters, f.name) == f.default
        for f in dataclasses.fields(filters)
    )


def where(
    register: Register, filters: Filters, scope: RegisterScope | None = None
) -> tuple[str, list[Any]] | None:
    """SQL over ``register_index i`` for what ``filters`` and ``scope`` let through; None
    when a filter is one the index does not answer."""
    if not indexed(filters):
        return None
    f, args = filters, list[Any]()
    kinds = list(f.kinds)
    clauses = [f"i.kind IN ({','.join('?' * len(kinds))})"]
    args.extend(kinds)
    if f.since is not None:
        clauses.append("i.at >= ?")
        args.append(f.since)
    if f.until is not None:
        clauses.append("i.at < ?")
        args.append(f.until)
    if f.staff:
        clauses.append(_in("i.staff", _named(register, "staff", f.staff), args))
    if f.family:
        clauses.append(_in("i.family", _named(register, "family", f.family), args))
    for what, text in (("recipient", f.recipient), ("organisation", f.organisation)):
        if text:
            ids = _containing(register, what, text)
            inner = _in("term", ids, args)
            clauses.append(f"i.seq IN (SELECT seq FROM register_index_term WHERE {inner})")  # noqa: S608
    if f.consent:
        clauses.append("i.consent = ?")
        args.append(f.consent)
    if f.incomplete:
        clauses.append("i.incomplete = 1")
    if f.refused:
        clauses.append("i.kind = 'refused'")
    if f.retention_hold:
        clauses.append(RETAINED)
    if f.held_for_approval:
        clauses.append("i.approval = 'held'")
    if not f.include_notices:
        clauses.append("i.notice = 0")
    clauses.append(_scoped(register, scope, args))
    return " AND ".join(clauses), args


def _scoped(register: Register, scope: RegisterScope | None, args: list[Any]) -> str:
    """The records ``scope`` shows: its reports' and those its viewer acted on."""
    if scope is None or scope.reports is None:
        return "1"
    staff = [i for login in sorted(scope.reports) for i in _named(register, "staff", login)]
    mine = _named(register, "actor", scope.login)
    own = _in("i.staff", staff, args)
    acted = _in("term", mine, args)
    return f"({own} OR i.seq IN (SELECT seq FROM register_index_term WHERE {acted}))"  # noqa: S608


def duty_counts(
    register: Register, scope: RegisterScope | None, now: float, today: str, inform_days: int
) -> tuple[int, int] | None:
    """(disclosures whose "person informed" is overdue at ``now``, retention holds due
    for review by ``today``) that ``scope`` shows; None before the index is built. A
    family hold superseded by a newer one of its family is not counted (as the fold)."""
    if not ready(register):
        return None
    args: list[Any] = [now - inform_days * 86400.0]
    seen = _scoped(register, scope, args)
    overdue = register.store.query(
        "SELECT count(*) FROM register_index i INDEXED BY register_index_inform"  # noqa: S608
        f" WHERE i.inform_from IS NOT NULL AND i.inform_from <= ? AND {seen}",
        args,
    )[0][0]
    args = [today, FAMILY_HOLD, FAMILY_HOLD]
    seen = _scoped(register, scope, args)
    review = register.store.query(
        "SELECT count(*) FROM register_index i INDEXED BY register_index_review"  # noqa: S608
        " WHERE i.review_on IS NOT NULL AND i.review_on <= ? AND NOT (i.kind = ? AND EXISTS"
        " (SELECT 1 FROM register_index h WHERE h.kind = ? AND h.family = i.family"
        f" AND h.own_hold = 1 AND h.seq > i.seq)) AND {seen}",
        args,
    )[0][0]
    return int(overdue), int(review)


def ready(register: Register) -> bool:
    """Whether the index covers the register: false only for a register written before
    the index existed and not yet through ``c4f-gateway upgrade`` (schema step 5)."""
    found = register.store.query(
        "SELECT (SELECT max(seq) FROM register_index) IS NOT NULL"
        " OR (SELECT max(seq) FROM register) IS NULL"
    )
    return bool(found[0][0])


def page(
    register: Register,
    filters: Filters,
    scope: RegisterScope | None,
    *,
    offset: int,
    limit: int,
) -> tuple[int, list[Record]] | None:
    """(how many records match, the ``limit`` newest after ``offset``), reading only
    those; None when ``filters`` need the whole register (see :func:`where`)."""
    found = where(register, filters, scope) if ready(register) else None
    if found is None:
        return None
    sql, args = found
    query = register.store.query
    total = int(query(f"SELECT count(*) FROM register_index i WHERE {sql}", args)[0][0])  # noqa: S608
    rows = query(
        f"SELECT i.seq, {RETAINED} AS retained FROM register_index i WHERE {sql}"  # noqa: S608
        " ORDER BY i.seq DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return total, records_of(register, {int(r[0]): bool(r[1]) for r in rows})


def records_of(register: Register, retained: dict[int, bool]) -> list[Record]:
    """The records starting at the keys of ``retained`` (in its order), folded with their
    follow-ups; ``retained``: kept beyond retention (their family's holds included)."""
    if not retained:
        return []
    seqs = list(retained)
    marks = ",".join("?" * len(seqs))
    rows = register.store.query(
        f"SELECT {COLUMNS} FROM register WHERE seq IN ({marks}) OR ref IN ({marks})"  # noqa: S608
        " ORDER BY seq",
        (*seqs, *seqs),
    )
    fold = getattr(register, "_build", build_records)
    by_seq = {r.seq: r for r in fold([register._entry(row) for row in rows])}
    out = []
    for seq in seqs:
        r = by_seq.get(seq)
        if r is not None:
            r.retention_hold = r.retention_hold or retained[seq]
            out.append(r)
    return out
