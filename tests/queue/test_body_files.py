"""A large message's body in a file of its own beside the database (gateway.queue.bodies).

The row keeps the sealed envelope, with the body's own key in it; the file is sealed
under that key and bound to its queue ID. What the spool promises for a message in its
row holds for one in a file: no plaintext on disk, durable before 250, byte-exact on
delivery, a damaged or missing body set aside (DUR-4) and sent once it is restored, and
nothing left behind once the message is delivered, deleted or refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from conftest import StartGateway
from support.harness import RunningGateway, message
from support.subprocess_gateway import run_cli

from gateway.errors import SpoolCorrupt
from gateway.queue.bodies import IN_FILE_OVER, BodyFiles, bodies_folder
from gateway.supervisor.serve_lock import sweep_bodies

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"
LINE = "Body-marker-9e1d: a long report about the Smith family\n"
BIG = LINE * (2 * IN_FILE_OVER // len(LINE))


def folder_of(gw: RunningGateway) -> Path:
    return bodies_folder(gw.settings.storage.database)


def names(gw: RunningGateway) -> list[str]:
    return sorted(p.name for p in folder_of(gw).iterdir())


def database_bytes(gw: RunningGateway) -> bytes:
    db = gw.settings.storage.database
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return b"".join(p.read_bytes() for p in files if p.exists())


def state_of(gw: RunningGateway, queue_id: str) -> str | None:
    found = gw.gateway.store.query("SELECT state FROM queue WHERE id = ?", (queue_id,))
    return found[0]["state"] if found else None


async def until(check: object, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


async def test_a_large_body_is_sealed_in_its_own_file_delivered_whole_then_removed(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    folder = tmp_path / "gw"
    gw = await start_gateway(folder=folder, deliver=False)
    gw.add_staff(ALICE)
    _e, reply = await gw.send(
        ALICE, [BOB], message(ALICE, [BOB], subject="Subject-marker-77a0", body=BIG)
    )
    qid = reply.split()[-1]
    _e, small = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="short\n"))
    assert names(gw) == [qid]  # the small one stays in its row
    body = folder_of(gw) / qid
    assert folder_of(gw).stat().st_mode & 0o777 == 0o700
    assert body.stat().st_mode & 0o777 == 0o600
    assert body.stat().st_size > len(BIG)
    (row,) = gw.gateway.store.query("SELECT blob FROM queue WHERE id = ?", (qid,))
    assert len(row["blob"]) < 4096  # only the envelope is in the row
    on_disk = database_bytes(gw) + body.read_bytes()
    assert qid.encode() in on_disk  # the right files were read
    for secret in (b"Body-marker-9e1d", b"Subject-marker-77a0", b"Smith family", BOB.encode()):
        assert secret not in on_disk
    await gw.gateway.stop()

    gw = await start_gateway(folder=folder)
    delivered = await gw.wait_maildir(2)
    [big] = [d for d in delivered if b"Body-marker-9e1d" in d]
    assert big.count(LINE.rstrip("\n").encode() + b"\r\n") == BIG.count(LINE)
    assert b"Subject-marker-77a0" in big
    await until(lambda: names(gw) == [])  # its key went with its row, then the file
    assert state_of(gw, qid) is None and state_of(gw, small.split()[-1]) is None


@pytest.mark.parametrize("how", ["flipped_byte", "missing", "another_message_s"])
async def test_dur4_a_damaged_or_missing_body_is_set_aside_and_sent_once_restored(
    start_gateway: StartGateway, tmp_path: Path, how: str
) -> None:
    folder = tmp_path / "gw"
    gw = await start_gateway(folder=folder, deliver=False)
    gw.add_staff(ALICE)
    _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="VICTIM\n" + BIG))
    victim = reply.split()[-1]
    _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body="INNOCENT\n" + BIG))
    innocent = reply.split()[-1]
    await gw.gateway.stop()
    path = folder_of(gw) / victim
    good = path.read_bytes()
    if how == "flipped_byte":
        path.write_bytes(good[:-40] + bytes([good[-40] ^ 1]) + good[-39:])
    elif how == "missing":
        path.unlink()
    else:  # a valid body, but another message's: bound to its own ID and key
        path.write_bytes((folder_of(gw) / innocent).read_bytes())

    gw = await start_gateway(folder=folder)
    [delivered] = await gw.wait_maildir(1)
    assert b"INNOCENT" in delivered
    await until(lambda: state_of(gw, victim) == "corrupt")
    assert len(gw.maildir()) == 1
    await gw.gateway.stop()
    shown = run_cli("queue", "show", victim, "--config", gw.config_path)
    assert "State:      SET ASIDE" in shown.stdout
    assert "body file" in shown.stdout
    retried = run_cli("queue", "retry", victim, "--config", gw.config_path)
    assert retried.returncode == 2
    assert "still fails its integrity check" in retried.stderr

    path.write_bytes(good)  # the admin restores it (from a backup)
    retried = run_cli("queue", "retry", victim, "--config", gw.config_path)
    assert retried.returncode == 0, retried.stderr
    gw = await start_gateway(folder=folder)
    delivered = await gw.wait_maildir(2)
    assert sum(b"VICTIM" in d for d in delivered) == 1


async def test_a_body_whose_row_is_not_committed_leaves_no_file_and_never_replaces_another(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(deliver=False)
    spool = gw.gateway.spool
    content = ("Subject: t\r\n\r\n" + BIG.replace("\n", "\r\n")).encode()

    def accept(qid: str, body: bytes, also: object = None) -> None:
        spool.accept(
            queue_id=qid,
            staff=ALICE,
            peer="127.0.0.1",
            mail_from=ALICE,
            rcpt_tos=[BOB],
            content=body,
            also=also,  # type: ignore[typeddict-item]
        )

    def boom(_conn: sqlite3.Connection, _event: object) -> None:
        raise RuntimeError("the transaction fails after the row was written")

    with pytest.raises(RuntimeError):
        accept("FAILED000001", content, also=boom)
    assert names(gw) == [] and state_of(gw, "FAILED000001") is None
    with pytest.raises(RuntimeError):
        await spool.accept_async(
            queue_id="FAILED000002",
            staff=ALICE,
            peer="127.0.0.1",
            mail_from=ALICE,
            rcpt_tos=[BOB],
            content=content,
            also=boom,
        )
    assert names(gw) == [] and state_of(gw, "FAILED000002") is None

    accept("SAMEID000001", content)
    first = (folder_of(gw) / "SAMEID000001").read_bytes()
    with pytest.raises(FileExistsError):
        accept("SAMEID000001", content.replace(b"Smith", b"Jones"))
    with pytest.raises(sqlite3.IntegrityError):  # a small one: no file of its own to write
        accept("SAMEID000001", b"Subject: t\r\n\r\nsmall\r\n")
    assert (folder_of(gw) / "SAMEID000001").read_bytes() == first
    loaded = spool.load("SAMEID000001")
    assert loaded is not None and loaded.content == content


async def test_deleting_or_refusing_a_large_message_removes_its_body(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(deliver=False)
    spool = gw.gateway.spool
    content = ("Subject: t\r\n\r\n" + BIG.replace("\n", "\r\n")).encode()
    for qid, held in (("QUEUED000001", False), ("HELD00000001", True)):
        spool.accept(
            queue_id=qid,
            staff=ALICE,
            peer="127.0.0.1",
            mail_from=ALICE,
            rcpt_tos=[BOB],
            content=content,
            held=held,
        )
    assert names(gw) == ["HELD00000001", "QUEUED000001"]
    assert spool.delete("HELD00000001") is False  # a held one only goes by a decision
    assert spool.delete("QUEUED000001") is True
    assert names(gw) == ["HELD00000001"]
    with gw.gateway.store.transaction() as conn:
        assert spool.discard(conn, "HELD00000001")
    spool.shred("HELD00000001")
    assert names(gw) == []


async def test_serve_removes_at_start_only_the_bodies_a_crash_left_without_a_row(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(deliver=False)
    gw.add_staff(ALICE)
    _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB], body=BIG))
    queued = reply.split()[-1]
    bodies = BodyFiles(folder_of(gw))
    bodies.write("ORPHAN000001", b"accepted, then the power went before its row")
    (folder_of(gw) / ".tmp-ORPHAN000002").write_bytes(b"half written")
    assert names(gw) == sorted([".tmp-ORPHAN000002", "ORPHAN000001", queued])
    sweep_bodies(gw.gateway.store)
    assert names(gw) == [queued]
    loaded = gw.gateway.spool.load(queued)
    assert loaded is not None and b"Body-marker-9e1d" in loaded.content


def test_a_body_opens_only_with_its_own_key_and_id(tmp_path: Path) -> None:
    bodies = BodyFiles(tmp_path / "gateway.db-bodies")
    key = bodies.write("AAAAAAAAAAA1", b"the body")
    assert bodies.read("AAAAAAAAAAA1", key) == b"the body"
    with pytest.raises(SpoolCorrupt):
        bodies.read("AAAAAAAAAAA1", bytes(32))
    (tmp_path / "gateway.db-bodies" / "AAAAAAAAAAA2").write_bytes(
        (tmp_path / "gateway.db-bodies" / "AAAAAAAAAAA1").read_bytes()
    )
    with pytest.raises(SpoolCorrupt):
        bodies.read("AAAAAAAAAAA2", key)
    with pytest.raises(ValueError):
        bodies.path("../gateway.db")
