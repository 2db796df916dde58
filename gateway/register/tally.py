"""Running counts of the register's index rows, so that a count or a summary over whole
months reads a few hundred tally rows rather than every index row
(:func:`gateway.register.index_counts.groups`): ``register_tally`` by month, kind, staff
and facts (:func:`gateway.register.index.facts_of`), and ``register_tally_org`` the
disclosures by month, staff and first receiving organisation.

Kept by :func:`gateway.register.index.put` in the same transaction as the row it counts:
a row rewritten (a follow-up, a purge) moves its counts from its old keys to its new ones.
Staff and organisation are ``register_term`` numbers (0: none), as in the index.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS register_tally (
    month TEXT NOT NULL,
    kind TEXT NOT NULL,
    staff INTEGER NOT NULL,
    facts INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (month, kind, staff, facts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS register_tally_org (
    month TEXT NOT NULL,
    staff INTEGER NOT NULL,
    org INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (month, staff, org)
) WITHOUT ROWID;
"""
DISCLOSED = 8  # index.DISCLOSED (kept here so that this module stays below the index)
Key = tuple[str, str, int, int, int]  # month, kind, staff, facts, first organisation
_KEY = "SELECT month, kind, coalesce(staff, 0), facts, coalesce(org, 0) FROM register_index"


def key_of(conn: sqlite3.Connection, seq: int) -> Key | None:
    """The tally key of index row ``seq`` as it stands (None: no row yet)."""
    found = conn.execute(f"{_KEY} WHERE seq = ?", (seq,)).fetchone()
    return None if found is None else (found[0], found[1], found[2], found[3], found[4])


def move(conn: sqlite3.Connection, old: Key | None, new: Key) -> None:
    """Count a row under ``new`` instead of ``old``."""
    if old == new:
        return
    if old is not None:
        _add(conn, old, -1)
    _add(conn, new, 1)


def _add(conn: sqlite3.Connection, key: Key, n: int) -> None:
    month, kind, staff, facts, org = key
    conn.execute(
        "INSERT INTO register_tally (month, kind, staff, facts, n) VALUES (?,?,?,?,?)"
        " ON CONFLICT (month, kind, staff, facts) DO UPDATE SET n = n + excluded.n",
        (month, kind, staff, facts, n),
    )
    if facts & DISCLOSED and org:
        conn.execute(
            "INSERT INTO register_tally_org (month, staff, org, n) VALUES (?,?,?,?)"
            " ON CONFLICT (month, staff, org) DO UPDATE SET n = n + excluded.n",
            (month, staff, org, n),
        )
    if n < 0:
        conn.execute("DELETE FROM register_tally WHERE n <= 0 AND month = ?", (month,))
        conn.execute("DELETE FROM register_tally_org WHERE n <= 0 AND month = ?", (month,))
