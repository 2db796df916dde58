"""Reading through the register's index (:mod:`.index`) without decrypting the register.

:func:`where` turns the list's :class:`~gateway.register.criteria.Filters` and a viewer's
:class:`~gateway.register.scope.RegisterScope` into SQL over ``register_index``, for one
page of the list (:mod:`.index_page`), counts and the summary (:mod:`.index_counts`),
and the duty counts (:mod:`.index_duties`). A filter the index does not answer
(``inform_due``, ``hold_review_due``, or one added to ``Filters`` later) makes
:func:`where` answer None, and the caller reads the register whole: slower, never wrong.
The index always covers the register: a database from before it existed is refused
until ``c4f-gateway upgrade`` has built it (schema step 5).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.register import index
from gateway.register.criteria import Filters
from gateway.register.ledger import Register
from gateway.register.scope import RegisterScope

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
    "(i.review_on IS NOT NULL OR (i.family IS NOT NULL AND i.family IN"
    " (SELECT family FROM register_index WHERE review_on IS NOT NULL AND family IS NOT NULL)))"
)


def in_list(column: str, ids: list[int], args: list[Any]) -> str:
    if not ids:
        return "0"
    args.extend(ids)
    return f"{column} IN ({','.join('?' * len(ids))})"


def named_terms(register: Register, what: str, value: str) -> list[int]:
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


def sets_only(filters: Filters, allowed: frozenset[str]) -> bool:
    """Whether every filter ``filters`` sets is one of ``allowed``."""
    return all(
        f.name in allowed or getattr(filters, f.name) == f.default
        for f in dataclasses.fields(filters)
    )


def where(
    register: Register, filters: Filters, scope: RegisterScope | None = None
) -> tuple[str, list[Any]] | None:
    """SQL over ``register_index i`` for what ``filters`` and ``scope`` let through; None
    when a filter is one the index does not answer."""
    if not sets_only(filters, INDEXED):
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
        clauses.append(in_list("i.staff", named_terms(register, "staff", f.staff), args))
    if f.family:
        clauses.append(in_list("i.family", named_terms(register, "family", f.family), args))
    for what, text in (("recipient", f.recipient), ("organisation", f.organisation)):
        if text:
            ids = _containing(register, what, text)
            inner = in_list("term", ids, args)
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


def scope_terms(register: Register, scope: RegisterScope) -> tuple[list[int], list[int]]:
    """The staff terms of ``scope``'s reports, and the actor terms of its viewer."""
    reports = sorted(scope.reports or ())
    staff = [i for login in reports for i in named_terms(register, "staff", login)]
    return staff, named_terms(register, "actor", scope.login)


def scoped(register: Register, scope: RegisterScope | None, args: list[Any]) -> str:
    """The records ``scope`` shows: its reports' and those its viewer acted on."""
    if scope is None or scope.reports is None:
        return "1"
    staff, mine = scope_terms(register, scope)
    own = in_list("i.staff", staff, args)
    acted = in_list("term", mine, args)
    return f"({own} OR i.seq IN (SELECT seq FROM register_index_term WHERE {acted}))"  # noqa: S608
