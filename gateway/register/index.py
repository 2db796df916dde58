"""What the register's list, filters and summary read, kept beside the register so that a
read does not decrypt every entry.

One row per record (an original with its follow-ups): its time and kind, and what the
fold (:func:`gateway.register.fold.build_records`, run on that record's own entries)
made of it: consent status, person informed, approval, status, complete or not. Whatever
names a person, a family or an organisation is a number pointing at ``register_term``,
which keeps a keyed hash of the value (found by equality, as :mod:`.threads` does for
Message-IDs) and, for organisations, domains and recipient addresses only, the value
itself sealed with the register key (shown on the Reports page, searched by "contains").
So the index holds no more than the list page shows a signed-in manager, and nothing
personal in the clear.

The row is written in the same transaction as every append (a follow-up rewrites its
original's row; a delivery outcome changes nothing it keeps), marked purged with its
entries, and rebuilt from the register by ``c4f-gateway upgrade`` and ``keys reseal
register``. The register's MAC chain stays the source of truth: ``register verify``
never reads this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from gateway.crypto import Keyring
from gateway.register import tally
from gateway.register.fold import build_records
from gateway.register.record import CONSENT_VALUES, NEVER_SENT, REFUSED_OR_NOT_SOUGHT, Record

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS register_term (
    id INTEGER PRIMARY KEY,
    what TEXT NOT NULL,            -- staff, actor, family, organisation, domain, recipient
    lookup BLOB NOT NULL UNIQUE,   -- keyed hash of the value (term_lookups)
    sealed BLOB                    -- organisation, domain, recipient: the value, sealed
);
CREATE TABLE IF NOT EXISTS register_index (
    seq INTEGER PRIMARY KEY,       -- the record's original entry
    at REAL NOT NULL,
    month TEXT NOT NULL,           -- "2026-11", the host's local time (month_of)
    kind TEXT NOT NULL,
    notice INTEGER NOT NULL,       -- the gateway's own notice to staff
    purged INTEGER NOT NULL,
    staff INTEGER,                 -- register_term ids
    family INTEGER,
    consent TEXT NOT NULL,
    informed TEXT NOT NULL,
    approval TEXT NOT NULL,
    incomplete INTEGER NOT NULL,
    held_at REAL,                  -- first held for approval
    decided_at REAL,               -- a line manager's decision on it
    facts INTEGER NOT NULL,        -- what the summary counts of it (facts_of; DISCLOSED: left)
    org INTEGER,                   -- its first receiving organisation (register_term id)
    orgs INTEGER NOT NULL,         -- how many receiving organisations it has
    inform_from REAL,              -- "person informed" owed, counted from (sent or approved)
    review_on TEXT                 -- its own retention hold's review date (YYYY-MM-DD);
                                   -- set: a hold of its own (its family's follow it)
);
CREATE INDEX IF NOT EXISTS register_index_at ON register_index (at);
CREATE INDEX IF NOT EXISTS register_index_staff ON register_index (staff);
CREATE INDEX IF NOT EXISTS register_index_family ON register_index (family);
-- Partial indexes holding every column their reads use, so those read no table row.
CREATE INDEX IF NOT EXISTS register_index_held
    ON register_index (held_at, month, decided_at, kind, staff, at) WHERE held_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS register_index_incomplete
    ON register_index (at, kind, staff) WHERE incomplete = 1;
CREATE INDEX IF NOT EXISTS register_index_orgs ON register_index (seq) WHERE orgs > 1;
CREATE INDEX IF NOT EXISTS register_index_inform ON register_index (inform_from, staff)
    WHERE inform_from IS NOT NULL;
CREATE INDEX IF NOT EXISTS register_index_review
    ON register_index (review_on, staff, kind, family) WHERE review_on IS NOT NULL;

CREATE TABLE IF NOT EXISTS register_index_term (
    seq INTEGER NOT NULL,          -- register_index.seq
    term INTEGER NOT NULL,         -- register_term.id (organisations, recipients, actors)
    PRIMARY KEY (seq, term)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS register_index_term_term ON register_index_term (term, seq);
"""
    + tally.SCHEMA
)
_PURPOSE = b"register-index/"
SEALED_TERMS = ("organisation", "domain", "recipient")
# A held message has not left yet; refused, withdrawn or expired, it never will.
NOT_SENT = ("held", *NEVER_SENT)
DECIDED = ("approved", "refused")  # a line manager's decision on a held message
# Follow-ups that change nothing a row keeps: a delivery outcome sets only the record's
# delivery status, which the list reads from the record itself.
UNINDEXED_FOLLOWUPS = ("outcome",)
# What the summary counts of a record: bits of register_index.facts, and for a
# disclosure its consent status (the index in CONSENT_VALUES) from CONSENT_SHIFT.
SENT, REFUSED, HELD, DISCLOSED, WITHOUT, OUTSTANDING, INCOMPLETE = (1 << k for k in range(7))
CONSENT_SHIFT = 7


def is_disclosure(r: Record) -> bool:
    """Sent by a member of staff outside the centre, and left (or will, once queued)."""
    return (
        r.kind == "accepted"
        and not r.notice
        and not r.purged
        and r.external
        and r.approval not in NOT_SENT
    )


def month_of(ts: float) -> str:
    """The local calendar month of ``ts``, as every time the register shows."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m")


def facts_of(r: Record) -> int:
    """The summary's facts about ``r`` (:mod:`.summary` counts the same over records)."""
    facts = 0
    if r.kind == "accepted" and not r.notice:
        facts |= SENT
    if r.kind == "refused":
        facts |= REFUSED
    if r.kind == "accepted" and r.approval == "held":
        facts |= HELD
    if r.missing:
        facts |= INCOMPLETE
    if is_disclosure(r):
        consent = r.consent if r.consent in CONSENT_VALUES else "not-recorded"
        facts |= DISCLOSED | CONSENT_VALUES.index(consent) << CONSENT_SHIFT
        if consent in REFUSED_OR_NOT_SOUGHT:
            facts |= WITHOUT | (0 if r.informed else OUTSTANDING)
    return facts


def fold_key(text: str) -> str:
    return " ".join(text.split()).lower()


def organisation_names(r: Record) -> dict[str, tuple[str, str]]:
    """The receiving organisations of ``r``: key (case and spacing folded) -> (what, name
    as recorded): the contact's ``organisation``, else the address's ``domain``."""
    out: dict[str, tuple[str, str]] = {}
    for x in r.recipients:
        name = " ".join(str(x.get("organisation") or "").split())
        what = "organisation"
        if not name:
            name, what = str(x.get("address", "")).rpartition("@")[2].lower(), "domain"
        if name:
            out.setdefault(name.lower(), (what, name))
    return out


def hold_times(r: Record) -> tuple[float | None, float | None]:
    """When ``r`` was first held for approval, and when a line manager decided."""
    held = decided = None
    for step in r.approval_steps:
        if step["action"] == "held" and held is None:
            held = float(step["at"])
        elif step["action"] in DECIDED and held is not None and decided is None:
            decided = float(step["at"])
    return held, decided


def term_lookups(keyring: Keyring, what: str, value: str) -> list[bytes]:
    """The keyed hashes a term may be stored under (the current key's first)."""
    return keyring.lookups(fold_key(value), _PURPOSE + what.encode())


def term_aad(what: str) -> bytes:
    return b"register_term:" + what.encode()


def term_id(conn: sqlite3.Connection, keyring: Keyring, what: str, value: str) -> int:
    """The term for ``value``, added (with its sealed value, if shown) when new."""
    hashes = term_lookups(keyring, what, value)
    marks = ",".join("?" * len(hashes))
    found = conn.execute(
        f"SELECT id FROM register_term WHERE lookup IN ({marks})",  # noqa: S608
        hashes,
    ).fetchone()
    if found:
        return int(found[0])
    sealed = keyring.seal(value.encode(), term_aad(what)) if what in SEALED_TERMS else None
    cur = conn.execute(
        "INSERT INTO register_term (what, lookup, sealed) VALUES (?, ?, ?)",
        (what, hashes[0], sealed),
    )
    return int(cur.lastrowid or 0)


def open_term(keyring: Keyring, what: str, sealed: bytes) -> str:
    """A sealed term's value (organisations, domains, recipients)."""
    return keyring.open(sealed, term_aad(what)).decode()


def terms(r: Record) -> list[tuple[str, str]]:
    """The many-valued terms of ``r`` besides its organisations: recipients, and who
    acted on it."""
    out = [("recipient", str(x.get("address", ""))) for x in r.recipients]
    actors = {str(e.data.get("actor", "")) for e in (r.entry, *r.followups)}
    out += [("actor", a) for a in sorted(actors)]
    return [(w, v) for w, v in out if v]


def put(conn: sqlite3.Connection, keyring: Keyring, r: Record, *, new: bool = False) -> None:
    """Write (or rewrite) the index row of ``r``, folded from its own entries. ``new``:
    the entry was just appended, so it has no row, no count and no terms to replace."""
    held_at, decided_at = hold_times(r)
    staff = term_id(conn, keyring, "staff", r.staff) if r.staff else None
    family = term_id(conn, keyring, "family", r.family) if r.family else None
    orgs = [term_id(conn, keyring, what, name) for what, name in organisation_names(r).values()]
    org = orgs[0] if orgs else None
    month, facts = month_of(r.at), facts_of(r)
    before = None if new else tally.key_of(conn, r.seq)
    conn.execute(
        "INSERT OR REPLACE INTO register_index (seq, at, month, kind, notice, purged,"
        " staff, family, consent, informed, approval, incomplete,"
        " held_at, decided_at, facts, org, orgs, inform_from, review_on)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            r.seq,
            r.at,
            month,
            r.kind,
            int(r.notice),
            int(r.purged),
            staff,
            family,
            r.consent or "",
            r.informed or "",
            r.approval or "",
            int(bool(r.missing)),
            held_at,
            decided_at,
            facts,
            org,
            len(orgs),
            (r.approved_at or r.at) if r.inform_open else None,
            # Folded alone, a record is kept beyond retention only by a hold of its own.
            r.own_hold.review_on if r.own_hold is not None else None,
        ),
    )
    tally.move(conn, before, (month, r.kind, staff or 0, facts, org or 0))
    if not new:
        conn.execute("DELETE FROM register_index_term WHERE seq = ?", (r.seq,))
    ids = {*orgs, *(term_id(conn, keyring, what, value) for what, value in terms(r))}
    conn.executemany(
        "INSERT INTO register_index_term (seq, term) VALUES (?, ?)", [(r.seq, i) for i in ids]
    )


def is_root(conn: sqlite3.Connection, seq: int) -> bool:
    return conn.execute("SELECT 1 FROM register_index WHERE seq = ?", (seq,)).fetchone() is not None


def forget_unused(conn: sqlite3.Connection) -> None:
    """Drop the terms no row names any more (after a purge: its values go with it)."""
    conn.execute(
        "DELETE FROM register_term WHERE id NOT IN (SELECT term FROM register_index_term)"
        " AND id NOT IN (SELECT staff FROM register_index WHERE staff IS NOT NULL)"
        " AND id NOT IN (SELECT family FROM register_index WHERE family IS NOT NULL)"
    )


def rebuild(conn: sqlite3.Connection, keyring: Keyring, records: Iterable[Record]) -> int:
    """The whole index again from folded records (upgrade, reseal); returns the rows."""
    conn.execute("DELETE FROM register_tally")
    conn.execute("DELETE FROM register_tally_org")
    conn.execute("DELETE FROM register_index_term")
    conn.execute("DELETE FROM register_index")
    conn.execute("DELETE FROM register_term")
    count = 0
    for r in records:
        put(conn, keyring, _alone(r))
        count += 1
    return count


def _alone(r: Record) -> Record:
    """``r`` folded from its own entries only (a whole-register fold also marks records
    held through their family, which the index works out when it is read)."""
    return build_records([r.entry, *r.followups])[0]
