"""Reading a database file as it is, for tests that compare one with another."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def dump(db: Path) -> list[str]:
    """Every table's rows and every statement of the schema, read without writing."""
    conn = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
