"""Counts through the register's index without reading its rows one by one: whole months
from the tally (:mod:`.tally`), rows only for the ends of a period and for what a manager
acted on outside their reports. The list's count and the summary read these."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from gateway.register import index
from gateway.register.criteria import Filters
from gateway.register.index import month_of
from gateway.register.index_read import in_list, named_terms, scope_terms, sets_only, where
from gateway.register.ledger import Register
from gateway.register.scope import RegisterScope

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
    if not sets_only(filters, PERIOD_ONLY):
        return None
    low, high, edges = whole_months(filters.since, filters.until)
    query = register.store.query
    # Rows: what they are counted by, and (by_org) only the disclosures with an organisation.
    cells, only = (
        ("i.facts, 0", "")
        if not by_org
        else (
            f"{index.DISCLOSED}, i.org",
            f" AND i.facts & {index.DISCLOSED} AND i.org IS NOT NULL",
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
        common.append(in_list("t.staff", named_terms(register, "staff", filters.staff), args))
    row_sql = " AND ".join(c.replace("t.", "i.") for c in clauses + common)
    row_args = list(args)
    if scope is not None and scope.reports is not None:
        staff, mine = scope_terms(register, scope)
        common.append(in_list("t.staff", staff, args))
        if mine:  # what the viewer acted on, sent by someone not among their reports
            acted = in_list("term", mine, row_args)
            others = in_list("i.staff", staff, row_args)
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
