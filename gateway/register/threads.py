"""Which relayed message a reply answers: its Message-ID, kept as a keyed hash.

Policy, "Inter-agency working": every transfer records its consent status. A reply in a
conversation with an agency shares under the same consent as the message it answers,
so the disclosure filter lets it inherit those details (``[filter.disclosure]
inherit_from_thread``). To find the message a reply answers, the register keeps, for
each message a member of staff sent, an HMAC of its Message-ID (never the ID itself:
it names the sender's host and often the sender) with the number of its register entry.
The details themselves stay in that sealed entry, read through :meth:`Register.thread_record`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.crypto import Keyring
from gateway.register.record import Record
from gateway.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS register_thread (
    lookup BLOB NOT NULL,            -- HMAC of the Message-ID (message_id_lookups)
    seq INTEGER NOT NULL,            -- the register entry of the message that carried it
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS register_thread_lookup ON register_thread (lookup);
"""
_PURPOSE = b"thread-message-id"
_MSG_ID = re.compile(r"<([^<>\s]{1,500})>")
# A held message refused, withdrawn or expired never left: nothing to continue.
_NOT_SENT = ("refused", "withdrawn", "expired")
MAX_REFERENCES = 50  # a long thread names every message before it: the newest are enough


def message_ids(value: str) -> list[str]:
    """The message IDs in a ``Message-ID``, ``In-Reply-To`` or ``References`` value."""
    return _MSG_ID.findall(value)


def message_id_lookups(keyring: Keyring, message_id: str) -> list[bytes]:
    """The keyed hashes ``message_id`` may be stored under (the current key's first)."""
    return keyring.lookups(message_id.strip().strip("<>"), _PURPOSE)


def remember(
    conn: sqlite3.Connection, keyring: Keyring, message_id: str, seq: int, at: float
) -> None:
    """Inside the acceptance's transaction: entry ``seq`` carried ``message_id``."""
    ids = message_ids(message_id) or [message_id.strip()]
    if ids[0]:
        conn.execute(
            "INSERT INTO register_thread (lookup, seq, at) VALUES (?, ?, ?)",
            (message_id_lookups(keyring, ids[0])[0], seq, at),
        )


def answered(store: Store, keyring: Keyring, ids: Iterable[str], since: float) -> list[int]:
    """The register entries of the messages ``ids`` name, sent after ``since``, newest first."""
    hashes = [h for i in list(ids)[-MAX_REFERENCES:] for h in message_id_lookups(keyring, i)]
    if not hashes:
        return []
    marks = ",".join("?" * len(hashes))
    rows = store.query(
        f"SELECT DISTINCT seq FROM register_thread WHERE lookup IN ({marks}) AND at >= ?"  # noqa: S608
        " ORDER BY seq DESC",
        (*hashes, since),
    )
    return [int(r["seq"]) for r in rows]


@dataclass(frozen=True)
class Inherited:
    """What a reply takes on from the message it answers (an explicit tag still wins)."""

    seq: int
    consent: str
    reason: str
    family: str
    nature: str
    safeguarding: bool
    third_party: bool = False  # a reply quotes what it answers: withheld from a client copy


def organisation_key(address: str, organisation: str) -> str:
    """Whom an address belongs to: its contact's organisation, else its domain."""
    return " ".join(organisation.lower().split()) or "@" + address.rpartition("@")[2].lower()


def inherit(
    store: Store,
    keyring: Keyring,
    record_of: Callable[[int], Record | None],
    ids: Iterable[str],
    organisations: set[str],
    outside: Callable[[str], bool],
    since: float,
) -> Inherited | None:
    """The newest relayed message among ``ids`` whose recipients ``outside`` the centre
    include every organisation in ``organisations`` (the reply's outside recipients);
    None if there is none: a reply to another organisation inherits nothing.
    ``record_of`` is :meth:`gateway.register.ledger.Register.thread_record`."""
    if not organisations:
        return None
    for seq in answered(store, keyring, ids, since):
        r = record_of(seq)
        if r is None or r.purged or r.kind != "accepted" or r.approval in _NOT_SENT:
            continue
        theirs = {
            organisation_key(str(x.get("address", "")), str(x.get("organisation", "")))
            for x in r.recipients
            if outside(str(x.get("address", "")))
        }
        if organisations <= theirs:
            return Inherited(
                seq, r.consent, r.reason, r.family, r.nature, r.safeguarding, r.third_party
            )
    return None
