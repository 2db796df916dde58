"""Re-sealing the register under a new master key (``c4f-gateway keys reseal register``).

An entry's personal fields are sealed with its own data key, and only that data key is
wrapped by the master key (:mod:`gateway.register.codec`). So re-sealing wraps each data
key again under the current master key, bound to the same entry number as before, and
leaves the entry's ciphertext alone. The MAC chain covers the digest of both, so each
batch appends an admin entry (kind ``admin``, action ``reseal``) whose MAC-covered public
part lists every entry it re-wrapped with the digest of its data afterwards:
``register verify`` accepts a changed wrapped key only when a later re-seal entry
recorded exactly that digest, and still reports any other change.

The keyed hash of a message's Message-ID (:mod:`gateway.register.threads`, how a reply
finds the message it answers) is made with the master key too, when the entry is
written: it is renewed with its entry, from the Message-ID in the entry's sealed data, so
replies to messages sent before a rotation are still matched once the old key is gone.

Each batch is one short write transaction, so a running ``serve`` keeps appending
between batches, and the chain stays linear (the re-seal entry is appended like any
other).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field

import structlog

from gateway.crypto import key_id_of
from gateway.errors import SpoolCorrupt
from gateway.register import threads
from gateway.register.codec import data_digest, open_entry, rewrap_entry_key
from gateway.register.ledger import Register

log = structlog.get_logger("gateway.register")

BATCH = 200


@dataclass
class ResealResult:
    resealed: int = 0
    unreadable: list[int] = field(default_factory=list)  # entries whose key did not open
    entries: list[int] = field(default_factory=list)  # the re-seal entries appended


def key_counts(register: Register) -> dict[str, Counter[str]]:
    """For each master key id: the entries it still wraps (purged entries need none) and
    the Message-ID hashes made with it (those of the entries it wraps)."""
    counts: dict[str, Counter[str]] = {}
    threaded = {r["seq"] for r in register.store.query("SELECT DISTINCT seq FROM register_thread")}
    after = 0
    while True:
        rows = register.store.query(
            "SELECT seq, substr(entry_key, 1, 300) AS head FROM register"
            " WHERE seq > ? AND entry_key IS NOT NULL ORDER BY seq LIMIT 5000",
            (after,),
        )
        for r in rows:
            found = counts.setdefault(key_id_of(bytes(r["head"])) or "?", Counter())
            found["register entries"] += 1
            if r["seq"] in threaded:
                found["register_thread.lookup"] += 1
        if len(rows) < 5000:
            return counts
        after = rows[-1]["seq"]


def _renew_thread(conn: sqlite3.Connection, register: Register, row: sqlite3.Row) -> None:
    """The Message-ID hash of entry ``row`` made again with the current master key."""
    if conn.execute("SELECT 1 FROM register_thread WHERE seq = ?", (row["seq"],)).fetchone():
        data = json.loads(open_entry(register.keyring, row["seq"], row["sealed"], row["entry_key"]))
        message_id = str(data.get("message_id") or "")
        ids = threads.message_ids(message_id) or [message_id.strip()]
        if ids[0]:
            conn.execute(
                "UPDATE register_thread SET lookup = ? WHERE seq = ?",
                (threads.message_id_lookups(register.keyring, ids[0])[0], row["seq"]),
            )


def reseal(register: Register, *, actor: str, batch: int = BATCH) -> ResealResult:
    """Wrap every entry's data key under the current master key, ``batch`` at a time."""
    result = ResealResult()
    after = 0
    while True:
        with register.store.transaction() as conn:
            rows = conn.execute(
                "SELECT seq, sealed, entry_key FROM register WHERE seq > ?"
                " AND entry_key IS NOT NULL ORDER BY seq LIMIT ?",
                (after, batch),
            ).fetchall()
            if not rows:
                break
            after = rows[-1]["seq"]
            done: list[list[int | str]] = []
            for r in rows:
                try:
                    new = rewrap_entry_key(register.keyring, r["seq"], bytes(r["entry_key"]))
                    if new is not None:
                        _renew_thread(conn, register, r)
                except (SpoolCorrupt, ValueError):
                    result.unreadable.append(r["seq"])
                    continue
                if new is None:
                    continue
                conn.execute("UPDATE register SET entry_key = ? WHERE seq = ?", (new, r["seq"]))
                done.append([r["seq"], data_digest(bytes(r["sealed"]), new).hex()])
            if done:
                seq = register.append(
                    conn,
                    kind="admin",
                    at=register.clock(),
                    personal={
                        "actor": actor,
                        "action": "reseal",
                        "details": {"entries": len(done), "key": register.keyring.current_id},
                    },
                    public={"resealed": done},
                )
                result.entries.append(seq)
                result.resealed += len(done)
    if result.resealed:
        # The old wrapped keys may linger in the write-ahead log until it is emptied.
        register.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    log.info(
        "register_resealed",
        entries=result.resealed,
        unreadable=len(result.unreadable),
        key=register.keyring.current_id,
    )
    return result
