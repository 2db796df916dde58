"""Tamper evidence: every edit, deletion, insertion, reordering and truncation is named.

The attacks are made directly on the SQLite file and the checkpoint files, through a
second connection, as someone holding the database file would make them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.register import DAY, T0, Clock, accepted, fill, make_register, raw, record

from gateway.register.codec import EntryFields, MacKey, entry_mac
from gateway.register.ledger import Register
from gateway.register.verify import COLUMNS, fields_of
from gateway.store import Store

N, K = 8, 4  # entries in the register, the entry attacked


@pytest.fixture
def reg(tmp_path: Path) -> Register:
    r = make_register(tmp_path)
    fill(r, N)
    assert r.verify().ok
    return r


def _flip(value: object) -> object:
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return (value[:-1] + ("x" if not value.endswith("x") else "y")) if value else "x"
    assert isinstance(value, bytes)
    return value[:-1] + bytes([value[-1] ^ 0x01])


@pytest.mark.parametrize(
    "column",
    [
        "epoch",
        "at_us",
        "kind",
        "ref",
        "queue_id",
        "size",
        "sha256",
        "public",
        "data_sha256",
        "sealed",
        "entry_key",
        "mac",
    ],
)
def test_reg2_edit_of_any_field_names_the_entry(reg: Register, tmp_path: Path, column: str) -> None:
    """REG-2: a byte flip in any field of entry k -> verify fails and names k."""
    db = raw(tmp_path)
    value = db.execute(f"SELECT {column} FROM register WHERE seq = ?", (K,)).fetchone()[0]  # noqa: S608
    db.execute(f"UPDATE register SET {column} = ? WHERE seq = ?", (_flip(value), K))  # noqa: S608
    result = reg.verify()
    assert not result.ok
    assert result.first is not None
    assert result.first.seq == K
    assert f"entry {K}" in result.first.text


def test_reg2_deleting_an_entry_names_it(reg: Register, tmp_path: Path) -> None:
    raw(tmp_path).execute("DELETE FROM register WHERE seq = ?", (K,))
    first = reg.verify().first
    assert first is not None
    assert first.seq == K
    assert first.text == f"entry {K} is missing (deleted)"


def test_reg2_swapping_two_entries_names_the_first(reg: Register, tmp_path: Path) -> None:
    db = raw(tmp_path)
    cols = [c.strip() for c in COLUMNS.split(",") if c.strip() != "seq"]
    a = db.execute(f"SELECT {COLUMNS} FROM register WHERE seq = ?", (K,)).fetchone()  # noqa: S608
    b = db.execute(f"SELECT {COLUMNS} FROM register WHERE seq = ?", (K + 1,)).fetchone()  # noqa: S608
    sets = ", ".join(f"{c} = ?" for c in cols)
    db.execute(f"UPDATE register SET {sets} WHERE seq = ?", [b[c] for c in cols] + [K])  # noqa: S608
    db.execute(f"UPDATE register SET {sets} WHERE seq = ?", [a[c] for c in cols] + [K + 1])  # noqa: S608
    result = reg.verify()
    assert result.first is not None
    assert result.first.seq == K
    assert any(f"holds the record written as entry {K}" in p.text for p in result.problems)


def test_reg2_replaying_an_entry_at_the_end_names_it(reg: Register, tmp_path: Path) -> None:
    db = raw(tmp_path)
    db.execute(
        f"INSERT INTO register ({COLUMNS}) SELECT {N + 1}, epoch, at_us, kind, ref, queue_id,"  # noqa: S608
        " size, sha256, public, data_sha256, sealed, entry_key, mac FROM register WHERE seq = ?",
        (K,),
    )
    first = reg.verify().first
    assert first is not None
    assert first.text == f"entry {N + 1} is a copy of entry {K} (replayed)"


def test_reg2_inserting_an_entry_names_it(reg: Register, tmp_path: Path) -> None:
    db = raw(tmp_path)
    for seq in range(N, K - 1, -1):  # make room at K, newest first (seq is the key)
        db.execute("UPDATE register SET seq = seq + 1 WHERE seq = ?", (seq,))
    db.execute(
        f"INSERT INTO register ({COLUMNS}) SELECT {K}, epoch, at_us + 1, kind, ref, 'FORGED',"  # noqa: S608
        " size, sha256, public, data_sha256, sealed, entry_key, randomblob(32) FROM register"
        " WHERE seq = ?",
        (K - 1,),
    )
    result = reg.verify()
    assert result.first is not None
    assert result.first.seq == K
    assert "altered or inserted" in result.first.text


def test_reg3_recomputing_without_the_mac_key_fails(reg: Register, tmp_path: Path) -> None:
    """REG-3: rewrite entry k and recompute a plain SHA-256 (or a MAC under a guessed key)."""
    db = raw(tmp_path)
    row = db.execute(f"SELECT {COLUMNS} FROM register WHERE seq = ?", (K,)).fetchone()  # noqa: S608
    prev = db.execute("SELECT mac FROM register WHERE seq = ?", (K - 1,)).fetchone()[0]
    forged = dataclasses.replace(fields_of(row), size=row["size"] + 100)
    for mac in (
        hashlib.sha256(forged.mac_input(prev)).digest(),
        entry_mac(b"\x00" * 32, forged, prev),
    ):
        db.execute("UPDATE register SET size = ?, mac = ? WHERE seq = ?", (forged.size, mac, K))
        first = reg.verify().first
        assert first is not None
        assert first.seq == K


def test_reg4_cut_off_tail_is_caught_by_the_checkpoint(reg: Register, tmp_path: Path) -> None:
    """REG-4: drop the newest entries -> the external checkpoint names where the cut was."""
    reg.checkpoint()
    assert reg.verify().ok
    raw(tmp_path).execute("DELETE FROM register WHERE seq > ?", (K,))
    result = reg.verify()
    assert result.first is not None
    assert result.first.seq == K + 1
    assert f"entries {K + 1} to {N} were cut off" in result.first.text
    # ... and no new checkpoint is written over the evidence.
    with pytest.raises(Exception, match="no longer matches checkpoint"):
        reg.checkpoint()


def test_reg4_restoring_an_old_backup_is_caught(tmp_path: Path) -> None:
    clock = Clock()
    reg = make_register(tmp_path, clock)
    fill(reg, 3)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(backup) as dst:
        src = sqlite3.connect(tmp_path / "gateway.db")
        src.backup(dst)
        src.close()
    fill(reg, 3, start=T0 + 3600)
    reg.checkpoint()
    reg.store.close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"gateway.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, tmp_path / "gateway.db")
    restored = make_register(tmp_path, clock)
    result = restored.verify()
    assert not result.ok
    assert "older copy of the database was restored" in result.problems[0].text


def test_reg4_edited_or_forged_checkpoint_is_named(reg: Register, tmp_path: Path) -> None:
    path = reg.checkpoint()
    doc = json.loads(path.read_text())
    doc["count"] = K  # make the truncation above look legitimate
    path.write_text(json.dumps(doc))
    result = reg.verify()
    assert [p.text for p in result.problems] == [
        f"checkpoint {path.name}: its signature does not match (the file was edited or forged)"
    ]
    path.write_text("{not json")
    assert f"checkpoint {path.name} is unreadable" in reg.verify().problems[0].text


def test_reg4_checkpoints_rotate_daily_and_must_be_on_schedule(tmp_path: Path) -> None:
    clock = Clock()
    reg = make_register(tmp_path, clock)
    fill(reg, 2)
    clock.advance(3 * DAY)
    result = reg.verify()
    assert [p.text.split(":")[0] for p in result.problems] == [
        f"no checkpoint in {tmp_path / 'checkpoints'}"
    ]
    first = reg.checkpoint()
    second = reg.checkpoint()  # the same day: the same file, replaced
    assert first == second
    clock.advance(DAY)
    third = reg.checkpoint()
    assert third != first
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [first.name, third.name]
    assert reg.verify().ok
    # Entries keep coming but checkpoints stop: verify says they are overdue.
    clock.advance(3 * DAY)
    record(reg, accepted("LATE", clock.now))
    problems = reg.verify().problems
    assert len(problems) == 1
    assert "checkpoints are overdue" in problems[0].text


_APPENDER = """
import sys, time
from pathlib import Path
from gateway.crypto import Keyring
from gateway.events import Accepted
from gateway.register.ledger import Register
from gateway.store import Store
base = Path(sys.argv[1])
reg = Register(Store(base / "gateway.db"), Keyring.load(base / "keys" / "register.key"),
               base / "keys" / "register-mac.key", base / "checkpoints")
for i in range(100000):
    ev = Accepted(queue_id=f"K{i}", received_at=time.time(), staff="a@c4f.example", peer="p",
                  mail_from="a@c4f.example", rcpt_tos=("x@y.example",),
                  content=b"Subject: s\\r\\n\\r\\nbody\\r\\n", sha256="0" * 64)
    with reg.store.transaction() as conn:
        reg.accepted(conn, ev)
    print(i + 1, flush=True)
"""


def test_reg6_kill_9_during_appends_leaves_a_whole_chain(tmp_path: Path) -> None:
    """REG-6: kill -9 mid-append -> every committed entry verifies, no gaps, no duplicates.

    SQLite's atomic commit is what makes this hold: a torn append is rolled back on the
    next open, so there is never a partial tail to quarantine.
    """
    reg = make_register(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acknowledged = 0
    while acknowledged < 30:
        acknowledged = int(proc.stdout.readline())
    proc.kill()  # SIGKILL, in the middle of whatever append comes next
    proc.wait()
    proc.stdout.close()
    result = reg.verify()
    assert result.ok, result.problems
    seqs = [r["seq"] for r in reg.store.query("SELECT seq FROM register ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= acknowledged


def test_reg6_failed_transaction_leaves_no_entry(tmp_path: Path) -> None:
    reg = make_register(tmp_path)
    fill(reg, 2)
    with pytest.raises(RuntimeError), reg.store.transaction() as conn:
        reg.accepted(conn, accepted("TORN"))
        raise RuntimeError("crash before commit")
    assert [r["queue_id"] for r in reg.store.query("SELECT queue_id FROM register")] == ["Q1", "Q2"]
    record(reg, accepted("Q3"))
    assert reg.verify().ok
    assert reg.store.query("SELECT max(seq) AS n FROM register")[0]["n"] == 3


def test_reg7_two_concurrent_appenders_make_one_chain(tmp_path: Path) -> None:
    """REG-7: two Store instances on the same file, in two threads."""
    make_register(tmp_path)  # creates the keys and the table
    regs = [make_register(tmp_path, store=Store(tmp_path / "gateway.db")) for _ in range(2)]
    per_thread = 150

    def work(reg: Register, tag: str) -> None:
        for i in range(per_thread):
            record(reg, accepted(f"{tag}{i}", time.time()))

    threads = [threading.Thread(target=work, args=(r, t)) for r, t in zip(regs, "AB", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = regs[0].verify()
    assert result.ok, result.problems
    assert result.count == 2 * per_thread
    queue_ids = [r["queue_id"] for r in regs[0].store.query("SELECT queue_id FROM register")]
    assert sorted(queue_ids) == sorted(
        [f"A{i}" for i in range(per_thread)] + [f"B{i}" for i in range(per_thread)]
    )


def test_reg9_evolved_key_cannot_forge_earlier_entries(tmp_path: Path) -> None:
    """REG-9: with evolving keys, an attacker holding today's key rewrites yesterday's
    entries; the verifier with the first key (kept offline) names the first forged one."""
    clock = Clock()
    reg = make_register(tmp_path, clock, evolve_mac_key=True)
    mac_file = tmp_path / "keys" / "register-mac.key"
    offline = tmp_path / "offline-mac.key"
    shutil.copy(mac_file, offline)
    fill(reg, 3)
    reg.checkpoint()  # signed with epoch 0, then the key moves to epoch 1
    clock.advance(DAY)
    fill(reg, 2, start=clock.now)
    reg.checkpoint()  # first of the day: signed with epoch 1, then epoch 2
    current = MacKey.load(mac_file)
    assert current.epoch == 2
    assert reg.verify(MacKey.load(offline)).ok

    # The attacker rewrites entry 2 onwards under the only key they can get: the current one.
    db = raw(tmp_path)
    prev = db.execute("SELECT mac FROM register WHERE seq = 1").fetchone()[0]
    for row in db.execute(f"SELECT {COLUMNS} FROM register WHERE seq >= 2 ORDER BY seq").fetchall():  # noqa: S608
        forged: EntryFields = dataclasses.replace(fields_of(row), epoch=current.epoch)
        if forged.seq == 2:
            forged = dataclasses.replace(forged, size=1)
        prev = entry_mac(current.key, forged, prev)
        db.execute(
            "UPDATE register SET epoch = ?, size = ?, mac = ? WHERE seq = ?",
            (forged.epoch, forged.size, prev, forged.seq),
        )
    offline_check = reg.verify(MacKey.load(offline))
    assert offline_check.first is not None
    assert offline_check.first.seq == 2
    # Even on the machine, the checkpoint that closed epoch 0 still exposes the re-keying.
    on_box = reg.verify()
    assert any(p.seq == 2 for p in on_box.problems)
