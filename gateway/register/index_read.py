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
from datetime import datetime
from typing import Any

from gateway.register import index
from gateway.register.index import month_of
from gateway.register.ledger import Register
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
    clauses.append(scoped(register, scope, args))
    return " AND ".join(clauses), args


def scoped(register: Register, scope: RegisterScope | None, args: list[Any]) -> str:
    """The records ``scope`` shows: its reports' and those its viewer acted on."""
    if scope is None or scope.reports is None:
        return "1"
    staff = [i for login in sorted(scope.reports) for i in _named(register, "staff", login)]
    mine = _named(register, "actor", scope.login)
    own = _in("i.staff", staff, args)
    acted = _in("term", mine, args)
    return f"({own} OR i.seq IN (SELECT seq FROM register_index_term WHERE {acted}))"  # noqa: S608


def ready(register: Register) -> bool:
    """Whether the index covers the register: false only for a register written before
    the index existed and not yet through ``c4f-gateway upgrade`` (schema step 5)."""
    found = register.store.query(
        "SELECT (SELECT max(seq) FROM register_index) IS NOT NULL"
        " OR (SELECT max(seq) FROM register) IS NULL"
    )
    return bool(found[0][0])


# Filters a count by whole months can answer from the tally: the period, kinds, notices,
# one member of staff.
PERIOD_ONLY = frozenset(("since", "until", "kinds", "include_notices", "now", "staff"))
Group = tuple[str, int, int, int]  # month, facts (index.facts_of), first organisation, records


def month_start(month: str) -> float:
    """Local midnight at the start of ``month`` ("2026-11")."""
    return datetime(int(month[:4]), int(month[5:7]), 1).timestamp()


def next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


def whole_months(
    since: float | None, until: float | None
) -> tuple[str | None, str | None, list[tuple[float | None, float | None]]]:
    """The whole months inside ``[since, until)`` as ``[low, high)`` (None: unbounded),
    and the ranges of the period outside them (read row by row)."""
    low = None if since is None else month_of(since)
    if since is not None and low is not None and month_start(low) != since:
        low = next_month(low)
    high = None if until is None else month_of(until)
    if low is not None and high is not None and low >= high:
        return "", "", [(since, until)]  # no whole month: the period row by row
    edges: list[tuple[float | None, float | None]] = []
    if since is not None and low is not None and since < month_start(low):
        edges.append((since, month_start(low)))
    if until is not None and high is not None and month_start(high) < until:
        edges.append((month_start(high), until))
    return low, high, edges


def groups(
    register: Register, filters: Filters, scope: RegisterScope | None, *, by_org: bool = False
) -> list[Group] | None:
    """What ``filters`` (a period, kinds, notices, staff) and ``scope`` let through, counted
    by month and facts (``by_org``: the disclosures, by month and first organisation): the
    tally for whole months, rows for the ends of the period and for records a manager
    acted on outside their reports. None when other filters are set (count rows then)."""
    if not ready(register) or not all(
        f.name in PERIOD_ONLY or getattr(filters, f.name) == f.default
        for f in dataclasses.fields(filters)
    ):
        return None
    low, high, edges = whole_months(filters.since, filters.until)
    query = register.store.query
    # Rows: what they are counted by, and (by_org) only the disclosures with an organisation.
    cells, only = (
        ("i.facts, 0", "")
        if not by_org
        else (
            f"{index.DISCLOSED}, i.org",
            " AND i.disclosure = 1 AND i.org IS NOT NULL",
        )
    )
    counted = f"SELECT i.month, {cells}, count(*) FROM register_index i"  # noqa: S608

    def rows(sql: str, args: list[Any]) -> list[Group]:
        found = query(f"{counted} WHERE {sql}{only} GROUP BY 1, 2, 3", args)
        return [(r[0], int(r[1]), int(r[2] or 0), int(r[3])) for r in found]

    out: list[Group] = []
    for since, until in edges:
        edge = where(register, dataclasses.replace(filters, since=since, until=until), scope)
        assert edge is not None
        out += rows(*edge)
    if (low, high) == ("", ""):
        return out
    kinds = list(filters.kinds)
    args: list[Any] = [*kinds]
    clauses = [f"t.kind IN ({','.join('?' * len(kinds))})"]
    if not filters.include_notices:  # a notice: accepted, and not sent by staff
        clauses.append(f"(t.kind != 'accepted' OR t.facts & {index.SENT})")
    common: list[str] = []  # what the organisations' tally can answer too
    for bound, op in ((low, ">="), (high, "<")):
        if bound is not None:
            common.append(f"t.month {op} ?")
            args.append(bound)
    if filters.staff:
        common.append(_in("t.staff", _named(register, "staff", filters.staff), args))
    row_sql = " AND ".join(c.replace("t.", "i.") for c in clauses + common)
    row_args = list(args)
    if scope is not None and scope.reports is not None:
        staff = [i for login in sorted(scope.reports) for i in _named(register, "staff", login)]
        common.append(_in("t.staff", staff, args))
        mine = _named(register, "actor", scope.login)
        if mine:  # what the viewer acted on, sent by someone not among their reports
            acted = _in("term", mine, row_args)
            others = _in("i.staff", staff, row_args)
            out += rows(
                f"{row_sql} AND i.seq IN (SELECT seq FROM register_index_term WHERE {acted})"  # noqa: S608
                f" AND NOT coalesce({others}, 0)",
                row_args,
            )
    if by_org:
        if "accepted" not in kinds:
            return out
        args = args[len(kinds) :]  # the organisations' tally counts disclosures only
        found = query(
            f"SELECT t.month, {index.DISCLOSED}, t.org, sum(t.n) FROM register_tally_org t"  # noqa: S608
            f" WHERE {' AND '.join(common) or '1'} GROUP BY 1, 3",
            args,
        )
    else:
        found = query(
            "SELECT t.month, t.facts, 0, sum(t.n) FROM register_tally t"  # noqa: S608
            f" WHERE {' AND '.join(clauses + common)} GROUP BY 1, 2",
            args,
        )
    return out + [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in found]


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
    counted = groups(register, filters, scope)
    total = (
        sum(g[3] for g in counted)
        if counted is not None
        else int(query(f"SELECT count(*) FROM register_index i WHERE {sql}", args)[0][0])  # noqa: S608
    )
    # Newest first: walk the rows from the newest and stop at the page's last, rather
    # than gather every match through another index and sort them (a period has one).
    walk = "NOT INDEXED" if filters.since is None and filters.until is None else ""
    rows = query(
        f"SELECT i.seq, {RETAINED} AS retained FROM register_index i {walk} WHERE {sql}"  # noqa: S608
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
