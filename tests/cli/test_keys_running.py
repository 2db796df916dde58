"""Key rotation while the real ``c4f-gateway serve`` runs in its own process.

A message is accepted and deferred (the upstream answers 451), then the spool, register
and MAC keys are rotated by ``c4f-gateway keys`` in other processes. The running gateway
seals the next message under the new keys without a restart; both messages are re-sealed
while it keeps retrying them, the old keys are retired, and once the upstream accepts,
both arrive byte-for-byte, over real SMTP and TLS, and the register still verifies.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest
from support.harness import message
from support.pki import TestCA
from support.subprocess_gateway import GatewayProcess, connect, prepare, run_cli
from support.upstream import Upstream

from gateway.crypto import Keyring, key_id_of
from gateway.register.codec import MacKey
from gateway.register.threads import answered
from gateway.store import Store

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"
pytestmark = pytest.mark.slow


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(run_cli, *args, "--config", config)
    return done.returncode, done.stdout, done.stderr


async def send(gw: GatewayProcess, ca: TestCA, marker: str) -> str:
    smtp = await connect(gw.port, ca)
    try:
        msg = message(
            ALICE,
            [BOB],
            subject=f"{marker} subject",
            body=f"{marker} body\n",
            Message_ID=f"<{marker.lower()}@c4f.example>",
        )
        _errors, reply = await smtp.send_message(msg)
    finally:
        smtp.close()
    return reply.split()[-1]


async def until(check: object, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def settle(path: Path) -> None:
    """Date the key file back past ``keys retire``'s settling time (60 s)."""
    then = time.time() - 120
    os.utime(path, (then, then))


def sql(config: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(config.parent / "gateway.db", timeout=10)
    try:
        return list(conn.execute(query, params))
    finally:
        conn.close()


async def test_rotation_by_the_cli_while_serve_runs(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    upstream.behaviour.data_replies = ["451 4.3.0 Try again later"] * 100_000
    config = prepare(tmp_path / "gw", ca, upstream_port=upstream.port)
    keys = config.parent / "keys"
    old_spool = Keyring.load(keys / "spool.key").current_id
    old_register = Keyring.load(keys / "register.key").current_id
    gw = await GatewayProcess(config).start()
    try:
        before = await send(gw, ca, "BEFORE-ROTATION")
        await until(
            lambda: sql(config, "SELECT attempts FROM queue WHERE id = ?", before)[0][0] >= 1,
            "the first attempt (deferred)",
        )

        for which in ("spool", "register", "mac"):
            code, out, err = await cli(config, "keys", "rotate", which, "--by", "admin")
            assert code == 0, err
            assert "rotated" in out
        new_spool = Keyring.load(keys / "spool.key").current_id
        new_register = Keyring.load(keys / "register.key").current_id
        assert MacKey.load(keys / "register-mac.key").epoch == 1

        # The running gateway seals and signs with the new keys, without a restart.
        after = await send(gw, ca, "AFTER-ROTATION")
        ((blob, staff),) = sql(config, "SELECT blob, staff FROM queue WHERE id = ?", after)
        assert key_id_of(blob) == key_id_of(staff) == new_spool  # type: ignore[arg-type]
        ((entry_key, epoch),) = sql(
            config,
            "SELECT entry_key, epoch FROM register WHERE queue_id = ? AND kind = 'accepted'",
            after,
        )
        assert key_id_of(entry_key) == new_register  # type: ignore[arg-type]
        assert epoch == 1
        ((blob,),) = sql(config, "SELECT blob FROM queue WHERE id = ?", before)
        assert key_id_of(blob) == old_spool  # type: ignore[arg-type]

        # Retire is refused while the deferred message still needs the old keys.
        settle(keys / "spool.key")
        settle(keys / "register.key")
        code, _out, err = await cli(config, "keys", "retire", old_spool)
        assert code == 2 and "queue.blob 1" in err
        code, _out, err = await cli(config, "keys", "retire", old_register)
        assert code == 2 and "register entries" in err
        assert "register_thread.lookup 1" in err  # the Message-ID a reply would name

        # Re-sealed while serve keeps retrying both messages (and recording each attempt).
        for which in ("spool", "register"):
            code, out, err = await cli(config, "keys", "reseal", which, "--batch", "1")
            assert code == 0, err + out
        ((blob,),) = sql(config, "SELECT blob FROM queue WHERE id = ?", before)
        assert key_id_of(blob) == new_spool  # type: ignore[arg-type]
        for old in (old_spool, old_register):
            code, out, err = await cli(config, "keys", "retire", old, "--by", "admin")
            assert code == 0, err
            assert f"{old} retired" in out
        assert Keyring.load(keys / "spool.key").ids == [new_spool]
        assert Keyring.load(keys / "register.key").ids == [new_register]
        # A reply naming either message still finds it, under the new key alone.
        store = Store(config.parent / "gateway.db")
        try:
            for marker, qid in (("before-rotation", before), ("after-rotation", after)):
                seqs = answered(
                    store, Keyring.load(keys / "register.key"), [f"<{marker}@c4f.example>"], 0
                )
                accepted = sql(
                    config,
                    "SELECT seq FROM register WHERE queue_id = ? AND kind = 'accepted'",
                    qid,
                )
                assert seqs == [accepted[0][0]], marker
        finally:
            store.close()

        # The upstream takes mail again: both leave, exactly as submitted.
        upstream.behaviour.data_replies.clear()
        arrived = await upstream.wait_for(2, timeout=30)
        for marker in (b"BEFORE-ROTATION", b"AFTER-ROTATION"):
            (content,) = [a.content for a in arrived if marker + b" body" in a.content]
            assert content.endswith(b"\r\n\r\n" + marker + b" body\r\n")
            assert b"Subject: " + marker + b" subject\r\n" in content
        await until(lambda: not sql(config, "SELECT id FROM queue"), "an empty queue")
        assert gw.proc is not None and gw.proc.returncode is None  # never restarted

        states = sql(
            config,
            "SELECT count(*) FROM register WHERE kind = 'outcome' AND queue_id IN (?, ?)",
            before,
            after,
        )
        assert states[0][0] >= 2
        code, _out, err = await cli(config, "register", "checkpoint")
        assert code == 0, err
        code, out, err = await cli(config, "register", "verify")
        assert code == 0, out + err
        assert "Register verified" in out
    finally:
        assert await gw.stop() == 0
    log = gw.output()
    assert "key_file_reloaded" in log
    assert "BEFORE-ROTATION" not in log and "AFTER-ROTATION" not in log
