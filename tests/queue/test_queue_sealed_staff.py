"""PRIV-1 for the queue and holds tables: the staff login is sealed at rest.

A login names a member of staff, and next to a held message's times it says who sent
something a line manager must look at. The queue and holds tables keep it sealed with the
spool key; the holds table finds a member's messages by a keyed hash (HMAC), never by the
login. What is asserted: the login's bytes are in neither the database file nor its
write-ahead log, and `queue list`, `held list` and the held views still show it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from conftest import StartGateway
from support.harness import PASSWORD, RunningGateway, message
from support.held import send_held
from support.subprocess_gateway import run_cli

from gateway.crypto import Keyring
from gateway.directory.passwords import hash_password
from gateway.directory.staff import StaffDirectory
from gateway.holds.service import Holds
from gateway.queue.spool import Spool
from gateway.schema import Keys, upgrade
from gateway.schema_version import CURRENT
from gateway.store import Store

SENDER = "priv.sender-4e7a@c4f.example"
MANAGER = "mona@c4f.example"
OTHER = "omar@c4f.example"
COLLEAGUE = "bob@c4f.example"
CONTACT = "j.smith@partner.test"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]}}


def _files(gw: RunningGateway) -> bytes:
    return _db_files(gw.settings.storage.database)


async def _cli(gw: RunningGateway, *args: str) -> str:
    done = await asyncio.to_thread(run_cli, *args, "--config", gw.config_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_priv1_staff_login_is_sealed_in_the_queue_and_holds_tables(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(config=CHAIN, deliver=False)  # everything stays in the queue
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(OTHER, role="manager")
    gw.add_staff(COLLEAGUE)
    gw.add_staff(SENDER, managers=[MANAGER])
    held = await send_held(gw, SENDER, [CONTACT], "[consent:refused] Report")
    _e, reply = await gw.send(SENDER, [COLLEAGUE], message(SENDER, [COLLEAGUE]))
    queued = reply.split()[-1]

    # Every feature that shows the login still shows it.
    rows = {r.queue_id: r.staff for r in gw.gateway.spool.rows()}
    assert (rows[held], rows[queued]) == (SENDER, SENDER)
    listing = await _cli(gw, "queue", "list")
    assert [ln for ln in listing.splitlines() if held in ln or queued in ln] == [
        ln for ln in listing.splitlines() if SENDER in ln
    ]
    assert len([ln for ln in listing.splitlines() if SENDER in ln]) == 2
    holds, staff = gw.gateway.holds, gw.gateway.staff
    for viewer, sees in ((SENDER, 1), (MANAGER, 1), (OTHER, 0), (COLLEAGUE, 0)):
        member = staff.get(viewer)
        assert member is not None
        assert [h.staff for h in holds.pending(member)] == [SENDER] * sees, viewer
        assert holds.count(member) == sees, viewer
    for by in (SENDER, MANAGER):
        assert f"{held}  {SENDER}" in await _cli(gw, "held", "list", "--by", by)
    assert "no messages are waiting" in await _cli(gw, "held", "list", "--by", OTHER)

    # The account is removed (its row zeroed, the log emptied): what the queue and holds
    # tables keep is all that is left, and it holds no trace of the login.
    assert staff.remove(SENDER)
    gw.gateway.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    on_disk = _files(gw)
    assert held.encode() in on_disk and queued.encode() in on_disk  # the right files
    assert SENDER.encode() not in on_disk
    assert b"priv.sender-4e7a" not in on_disk
    assert f"{held}  {SENDER}" in await _cli(gw, "held", "list")
    assert len([ln for ln in (await _cli(gw, "queue", "list")).splitlines() if SENDER in ln]) == 2


# The queue and holds tables as databases from before steps 2 and 3 have them.
BEFORE_STEP_1 = """
CREATE TABLE queue (
    id TEXT PRIMARY KEY, created REAL NOT NULL, staff TEXT NOT NULL, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL, last_error BLOB, blob BLOB NOT NULL
);
CREATE INDEX queue_due ON queue (state, next_attempt);
CREATE TABLE queue_rcpt (
    queue_id TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (queue_id, idx)
);
CREATE TABLE holds (
    queue_id TEXT PRIMARY KEY REFERENCES queue(id) ON DELETE CASCADE, staff TEXT NOT NULL,
    held_at REAL NOT NULL, expires_at REAL NOT NULL, reminded_at REAL NOT NULL,
    needs_note INTEGER NOT NULL, reasons BLOB NOT NULL
);
CREATE INDEX holds_expiry ON holds (expires_at);
"""


def test_priv1_steps_2_and_3_seal_the_logins_of_an_older_database(tmp_path: Path) -> None:
    Keyring.create(tmp_path / "spool.key")
    keyring = Keyring.load(tmp_path / "spool.key")
    db = tmp_path / "gateway.db"
    content = b"Subject: s\r\n\r\nbody\r\n"
    now = time.time()
    old = sqlite3.connect(db)
    old.executescript(BEFORE_STEP_1)
    for qid, state in (("AAAAAAAAAAA1", "held"), ("BBBBBBBBBBB2", "queued")):
        envelope = {
            "staff": SENDER,
            "peer": "192.0.2.1",
            "mail_from": SENDER,
            "rcpt_tos": [CONTACT],
            "received_at": now,
            "annotations": {"hold": {"reasons": ["consent refused"]}} if state == "held" else {},
        }
        old.execute(
            "INSERT INTO queue VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL, ?)",
            (
                qid,
                now,
                SENDER,
                len(content),
                hashlib.sha256(content).hexdigest(),
                state,
                now,
                _sealed_as_before(keyring, qid, envelope, content),
            ),
        )
        old.execute("INSERT INTO queue_rcpt VALUES (?, 0, 'pending')", (qid,))
    reasons = keyring.seal(b'["consent refused"]', b"hold:AAAAAAAAAAA1")
    old.execute(
        "INSERT INTO holds VALUES ('AAAAAAAAAAA1', ?, ?, ?, ?, 1, ?)",
        (SENDER, now, now + 7 * 86400, now, reasons),
    )
    old.commit()
    old.close()
    assert SENDER.encode() in db.read_bytes()

    store = Store(db, check_version=False, exclusive=True)
    assert upgrade(store, Keys(spool=keyring, register=keyring)) == CURRENT  # steps 2 and 3
    store.close()
    store = Store(db)
    spool = Spool(store, keyring)
    holds = Holds(spool, StaffDirectory(store), "gateway.test")
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    assert SENDER.encode() not in _db_files(db)
    assert [r.staff for r in spool.rows()] == [SENDER, SENDER]

    with store.transaction() as conn:
        for login, role, managers in ((MANAGER, "manager", []), (SENDER, "staff", [MANAGER])):
            conn.execute(
                "INSERT INTO staff (login, password_hash, aliases, created, role, managers)"
                " VALUES (?, ?, '[]', 0, ?, ?)",
                (login, hash_password(PASSWORD, n=2**10), role, json.dumps(managers)),
            )
    manager = StaffDirectory(store).get(MANAGER)
    assert manager is not None
    [held] = holds.pending(manager)
    assert (held.queue_id, held.staff, held.reasons) == (
        "AAAAAAAAAAA1",
        SENDER,
        ("consent refused",),
    )
    assert holds.count(manager) == 1
    holds.approve("AAAAAAAAAAA1", MANAGER, "Discussed")
    released = spool.load("AAAAAAAAAAA1")
    assert released is not None and released.content == content
    store.close()


def _sealed_as_before(keyring: Keyring, qid: str, envelope: dict[str, Any], body: bytes) -> bytes:
    """A queue blob as the spool has always sealed it: length, envelope JSON, message."""
    head = json.dumps(envelope).encode()
    return keyring.seal(len(head).to_bytes(4, "big") + head + body, qid.encode())


def _db_files(db: Path) -> bytes:
    paths = [db, db.with_name(db.name + "-wal")]
    return b"".join(p.read_bytes() for p in paths if p.exists())
