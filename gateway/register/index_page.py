"""One page of the register's list through its index: the records matching, newest
first, and only those read and folded (:func:`page`)."""

from __future__ import annotations

from gateway.register.criteria import Filters
from gateway.register.entry_rows import open_row
from gateway.register.fold import build_records
from gateway.register.index_counts import groups
from gateway.register.index_read import RETAINED, where
from gateway.register.ledger import Register
from gateway.register.record import Record
from gateway.register.scope import RegisterScope
from gateway.register.verify import COLUMNS


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
    found = where(register, filters, scope)
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
    entries = [open_row(register.keyring, row) for row in rows]
    folded = build_records(entries, inform_within_days=register.inform_within_days)
    by_seq = {r.seq: r for r in folded}
    out = []
    for seq in seqs:
        r = by_seq.get(seq)
        if r is not None:
            r.retention_hold = r.retention_hold or retained[seq]
            out.append(r)
    return out
