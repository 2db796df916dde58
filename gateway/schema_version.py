"""Which shape of database this gateway reads and writes, and who may open another one.

The database records its shape in ``PRAGMA user_version``: the number of the last step
of :data:`gateway.schema.STEPS` it has been through (0: a release from before versions
were recorded). :class:`gateway.store.Store` checks it on every open, so ``serve``, the
console and every command refuse a database newer than themselves (its tables may mean
something this code does not know) and one older than themselves (it must first go
through ``c4f-gateway upgrade``, which takes a backup). A new, empty database is stamped
with :data:`CURRENT` at once: the tables each component then creates are current.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# The number of steps in gateway.schema.STEPS (a test holds the two together).
CURRENT = 5


class DatabaseRefused(Exception):
    """The database cannot be opened by this command: its version, or another process."""


def read(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check(conn: sqlite3.Connection, path: Path) -> int:
    """Stamp an empty database; refuse one of another version. Returns its version."""
    version = read(conn)
    if version == 0 and _empty(conn):
        conn.execute("BEGIN IMMEDIATE")  # only a new database is written to here
        try:
            if read(conn) == 0 and _empty(conn):
                conn.execute(f"PRAGMA user_version = {CURRENT}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        version = read(conn)
    if version > CURRENT:
        raise DatabaseRefused(
            f"{path}: database schema version {version} is newer than this gateway's "
            f"({CURRENT}): it was upgraded by a later release; run that release, or restore "
            "the backup taken before the upgrade"
        )
    if version < CURRENT:
        raise DatabaseRefused(
            f"{path}: database schema version {version} is older than this gateway's "
            f"({CURRENT}): stop the gateway and run 'c4f-gateway upgrade --config FILE' "
            "(it takes a backup first)"
        )
    return version


def _empty(conn: sqlite3.Connection) -> bool:
    return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0
