"""Running counts of the register's index rows, by month, kind, staff, facts and first
organisation, so that a count or a summary over whole months reads a few hundred tally
rows rather than every index row (:func:`gateway.register.index_read.groups`).

Kept by :func:`gateway.register.index.put` in the same transaction as the row it counts:
a row rewritten (a follow-up, a purge) moves its count from its old key to its new one.
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
    org INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (month, kind, staff, facts, org)
) WITHOUT ROWID;
"""
Key = tuple[str, str, int, int, int]  # month, kind, staff, facts, org
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
        conn.execute(
            "UPDATE register_tally SET n = n - 1"
            " WHERE month = ? AND kind = ? AND staff = ? AND facts = ? AND org = ?",
            old,
        )
        conn.execute(
            "DELETE FROM register_tally WHERE month = ? AND kind = ? AND staff = ? AND facts = ?"
            " AND org = ? AND n <= 0",
            old,
        )
    conn.execute(
        "INSERT INTO register_tally (month, kind, staff, facts, org, n) VALUES (?,?,?,?,?,1)"
        " ON CONFLICT (month, kind, staff, facts, org) DO UPDATE SET n = n + 1",
        new,
    )
