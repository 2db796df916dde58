"""The spool at rest: no plaintext on disk, and damaged entries set aside (DUR-4).

Policy, "Storage of information": kept in a secure place at all times. The queue lives
in the SQLite file sealed with AES-256-GCM; a blob that fails its tag is quarantined
(state ``corrupt``), shown by ``queue list``, neither sent nor deleted, and the rest of
the queue keeps flowing.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import aiosmtplib
import pytest
from conftest import StartGateway
from support.harness import RunningGateway, message
from support.subprocess_gateway import run_cli

from gateway.crypto import Keyring

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"


def database_bytes(gw: RunningGateway) -> bytes:
    db = gw.settings.storage.database
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return b"".join(p.read_bytes() for p in files if p.exists())


async def test_spool_holds_no_plaintext_of_body_subject_or_recipient(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(deliver=False)  # the message stays queued
    gw.add_staff(ALICE)
    rcpt = "j.unique-recipient-7f3a@partner.example"
    msg = message(
        ALICE,
        [rcpt],
        subject="Subject-marker-5b1e about the Smith family",
        body="Body-marker-c0ffee: notes from the contact session\n" * 50,
    )
    _errors, reply = await gw.send(ALICE, [rcpt], msg)
    assert reply.startswith("2.0.0 Queued as ")
    on_disk = database_bytes(gw)
    # The files read are the right ones: the queue row's clear columns are in them.
    assert reply.split()[-1].encode() in on_disk
    assert ALICE.encode() in on_disk
    for secret in (b"Body-marker-c0ffee", b"Subject-marker-5b1e", b"Smith family", rcpt.encode()):
        assert secret not in on_disk
    assert b"unique-recipient-7f3a" not in on_disk


def corrupt_blob(database: Path, queue_id: str, how: str) -> bytes:
    """Damage one message's sealed blob in the SQLite file, from outside the gateway."""
    conn = sqlite3.connect(database)
    try:
        (blob,) = conn.execute("SELECT blob FROM queue WHERE id = ?", (queue_id,)).fetchone()
        if how == "truncated":
            damaged = blob[: len(blob) // 2]
        else:  # one ciphertext byte flipped: the GCM tag no longer matches
            damaged = blob[:-40] + bytes([blob[-40] ^ 0x01]) + blob[-39:]
        conn.execute("UPDATE queue SET blob = ? WHERE id = ?", (damaged, queue_id))
        conn.commit()
    finally:
        conn.close()
    return bytes(damaged)


def queue_row(gw: RunningGateway, queue_id: str) -> sqlite3.Row | None:
    found = gw.gateway.store.query("SELECT * FROM queue WHERE id = ?", (queue_id,))
    return found[0] if found else None


@pytest.mark.parametrize("how", ["truncated", "flipped_byte"])
async def test_dur4_damaged_blob_is_set_aside_reported_and_not_sent(
    start_gateway: StartGateway, tmp_path: Path, how: str
) -> None:
    folder = tmp_path / "gw"
    gw = await start_gateway(folder=folder, deliver=False)
    gw.add_staff(ALICE)
    _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="VICTIM\n"))
    victim = reply.split()[-1]
    await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="INNOCENT\n"))
    await gw.gateway.stop()
    damaged = corrupt_blob(gw.settings.storage.database, victim, how)

    gw = await start_gateway(folder=folder)
    [delivered] = await gw.wait_maildir(1)
    assert b"INNOCENT" in delivered
    await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="AFTERWARDS\n"))
    files = await gw.wait_maildir(2)
    assert not any(b"VICTIM" in f for f in files)
    row = queue_row(gw, victim)
    assert row is not None  # not deleted ...
    assert row["state"] == "corrupt"  # ... but set aside ...
    assert bytes(row["blob"]) == damaged  # ... untouched, for the admin to examine
    await gw.gateway.stop()

    listed = run_cli("queue", "list", "--config", gw.config_path)
    assert listed.returncode == 0, listed.stderr
    [line] = [ln for ln in listed.stdout.splitlines() if ln.startswith(victim)]
    assert "SET ASIDE (failed integrity check)" in line
    shown = run_cli("queue", "show", victim, "--config", gw.config_path)
    assert "State:      SET ASIDE" in shown.stdout
    assert "integrity check failed" in shown.stdout or "truncated" in shown.stdout
    retried = run_cli("queue", "retry", victim, "--config", gw.config_path)
    assert retried.returncode == 2
    assert "still fails its integrity check" in retried.stderr
    assert len(gw.maildir()) == 2


async def test_message_sealed_with_a_lost_key_comes_back_when_the_key_is_restored(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """An admin replaced the key file by mistake: mail waits set aside, not lost."""
    folder = tmp_path / "gw"
    gw = await start_gateway(folder=folder, deliver=False)
    gw.add_staff(ALICE)
    _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="SEALED-WITH-OLD-KEY\n"))
    qid = reply.split()[-1]
    await gw.gateway.stop()
    keyfile = gw.settings.storage.spool_key_file
    old = keyfile.read_text()
    keyfile.unlink()
    Keyring.create(keyfile)  # the mistake: a fresh key, the old one gone

    gw = await start_gateway(folder=folder)
    for _ in range(100):
        row = queue_row(gw, qid)
        if row is not None and row["state"] == "corrupt":
            break
        await asyncio.sleep(0.05)
    assert row is not None and row["state"] == "corrupt"
    assert gw.maildir() == []
    await gw.gateway.stop()

    keyfile.write_text(keyfile.read_text() + old)  # the old key restored, after the new one
    retried = run_cli("queue", "retry", qid, "--config", gw.config_path)
    assert retried.returncode == 0, retried.stderr
    assert "passes its integrity check again" in retried.stdout
    gw = await start_gateway(folder=folder)
    [delivered] = await gw.wait_maildir(1)
    assert b"SEALED-WITH-OLD-KEY" in delivered


class BareLineFeed:
    """A filter with a fault: it adds a line that ends in a bare LF."""

    name = "bare-lf"

    async def on_data(self, tx: object, content: bytes) -> bytes:
        return content + b"added by a faulty filter\n"


async def test_mime7_a_filter_that_makes_a_bare_lf_gets_451_and_nothing_is_queued(
    start_gateway: StartGateway,
) -> None:
    """What leaves is held to the rule for what arrives: a filter's fault is a 451, never
    a message in the queue with a line end a later hop could read as the end of data."""
    gw = await start_gateway(deliver=False)
    gw.add_staff(ALICE)
    gw.gateway.pipeline.filters.append(BareLineFeed())
    with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
        await gw.send(ALICE, [BOB], message(ALICE, [BOB], subject="x", body="hi\n"))
    assert (deferred.value.code, deferred.value.message) == (
        451,
        "4.3.0 Local policy check failed; try again later",
    )
    assert gw.gateway.store.query("SELECT count(*) AS n FROM queue")[0]["n"] == 0


async def test_what_was_checked_at_acceptance_is_sealed_with_the_message(
    start_gateway: StartGateway,
) -> None:
    """Submission checked it (MIME-7): delivery does not read it again. What reached the
    spool by another path is checked there, and unclean content is marked for repair at
    delivery (SMUG-12)."""
    gw = await start_gateway(deliver=False)
    gw.add_staff(ALICE)
    _errors, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], subject="x", body="hi\n"))
    direct = {
        "CLEANDIRECT1": b"Subject: t\r\n\r\nclean\r\n",
        "BARELFDIRECT": b"Subject: t\r\n\r\nbare\nline feed\r\n",
        "BARECRDIRECT": b"Subject: t\r\n\r\nbare\rcarriage return\r\n",
        "NULDIRECT001": b"Subject: t\r\n\r\nnul\x00\r\n",
    }
    spool = gw.gateway.spool
    for qid, content in direct.items():
        accepted = spool.accept(
            queue_id=qid,
            staff=ALICE,
            peer="127.0.0.1",
            mail_from=ALICE,
            rcpt_tos=[BOB],
            content=content,
        )
        # Told without the message, which the caller has (the commit thread lets go of it).
        assert (accepted.queue_id, accepted.content) == (qid, b"")
        assert accepted.sha256 == hashlib.sha256(content).hexdigest()
    marked = {}
    for qid in (reply.split()[-1], *direct):
        loaded = spool.load(qid)
        assert loaded is not None
        marked[qid] = loaded.clean
    assert list(marked.values()) == [True, True, False, False, False]
