"""When nobody has decided on a held message in time, the admins are told, once.

Policy, "Disclosing information": a safeguarding concern must not wait on one person's
inbox. Each hold gets a due time (``[filter.approval] escalate_after_hours``, 24, or
``escalate_safeguarding_after_hours``, 2, for ``[safeguarding]``); past it, still held,
the admins get one notice. The row goes in the hold's own transaction and leaves in the
notice's, so a restart neither forgets nor repeats it. Rows of messages decided meanwhile
(the holds row is gone) are dropped without a notice.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS hold_escalation (
    queue_id TEXT PRIMARY KEY REFERENCES queue(id) ON DELETE CASCADE,
    due REAL NOT NULL,
    urgent INTEGER NOT NULL
);
"""


def schedule(conn: sqlite3.Connection, queue_id: str, due: float, urgent: bool) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO hold_escalation (queue_id, due, urgent) VALUES (?, ?, ?)",
        (queue_id, due, int(urgent)),
    )


def take_due(conn: sqlite3.Connection, now: float) -> list[tuple[str, bool]]:
    """The still-held messages past their due time, removed from the schedule."""
    conn.execute("DELETE FROM hold_escalation WHERE queue_id NOT IN (SELECT queue_id FROM holds)")
    rows = conn.execute(
        "SELECT queue_id, urgent FROM hold_escalation WHERE due <= ? ORDER BY due", (now,)
    ).fetchall()
    conn.executemany("DELETE FROM hold_escalation WHERE queue_id = ?", [(r[0],) for r in rows])
    return [(str(r[0]), bool(r[1])) for r in rows]
