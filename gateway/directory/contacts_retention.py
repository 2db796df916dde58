"""Retention: a removed contact's change history goes with the register's retention (PRIV-2).

Policy, "Storage of information": information is disposed of after three years. While a
contact is approved, its history is the record of who approved it and how the address
was checked, and it stays. Once the contact is removed, its history (names, organisation,
notes, sealed) is kept for ``[register] retention_days`` after the removal, as long as
the register keeps the entries that mention it, and then deleted. ``secure_delete``
zeroes the freed pages and the write-ahead log is emptied afterwards, so no copy of the
rows stays in the file. The register's own record of each change (its admin trail)
goes with the register's purge (:mod:`gateway.register.purge`).

Run daily by ``serve`` and by ``c4f-gateway register purge``, after the register's purge.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from gateway.directory.contacts import ContactRepository

log = structlog.get_logger("gateway.directory")


def purge_removed_history(
    repo: ContactRepository, retention_days: int, *, dry_run: bool = False
) -> list[int]:
    """Delete the history of contacts removed more than ``retention_days`` ago; returns
    their ids (those that would go, with ``dry_run``)."""
    cutoff = repo.clock() - timedelta(days=retention_days)
    # Ids are never reused (AUTOINCREMENT): a removed id stays removed.
    removals = repo.store.query(
        "SELECT contact_id, max(at) AS at FROM contact_audit WHERE action = 'remove'"
        " AND contact_id NOT IN (SELECT id FROM contacts) GROUP BY contact_id ORDER BY contact_id"
    )
    due = [int(r["contact_id"]) for r in removals if datetime.fromisoformat(r["at"]) < cutoff]
    if dry_run or not due:
        return due
    repo.store.query("PRAGMA secure_delete = ON")
    with repo.store.transaction() as conn:
        marks = ",".join("?" * len(due))
        conn.execute(
            f"DELETE FROM contact_audit WHERE contact_id IN ({marks})"  # noqa: S608
            f" AND contact_id NOT IN (SELECT id FROM contacts)",
            due,
        )
    # Old pages may survive in the write-ahead log until it is checkpointed and truncated.
    repo.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    log.info("contacts_history_purged", contacts=len(due))
    return due
