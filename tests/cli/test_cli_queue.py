"""``c4f-gateway queue list|show|retry|delete`` on a real queue: one message deferred by
the upstream (451), one whose sealed blob was damaged (DUR-4). The admin sees envelopes,
states and errors, never content.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from conftest import StartGateway
from support.harness import RunningGateway, message
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"


def queue(gw: RunningGateway, *args: str) -> tuple[int, str, str]:
    done = run_cli("queue", *args, "--config", gw.config_path)
    return done.returncode, done.stdout, done.stderr


def db(gw: RunningGateway) -> sqlite3.Connection:
    conn = sqlite3.connect(gw.settings.storage.database)
    conn.row_factory = sqlite3.Row
    return conn


@pytest.fixture
async def queued(
    start_gateway: StartGateway, upstream: Upstream
) -> tuple[RunningGateway, str, str]:
    """A stopped gateway whose queue holds a deferred message and a damaged one."""
    upstream.behaviour.data_replies = ["451 4.7.1 Greylisted, try again later"] * 20
    gw = await start_gateway(
        upstream=upstream, config={"delivery": {"retry_initial": 3600.0, "retry_max": 7200.0}}
    )
    gw.add_staff(ALICE)
    ids = []
    for marker in ("DEFERRED-BODY", "DAMAGED-BODY"):
        msg = message(ALICE, [BOB, "carol@c4f.example"], subject=f"{marker} subject", body=marker)
        _e, reply = await gw.send(ALICE, [BOB, "carol@c4f.example"], msg)
        ids.append(reply.split()[-1])
    for _ in range(200):  # until both were tried once and deferred
        if gw.gateway.store.query("SELECT min(attempts) AS n FROM queue")[0]["n"] == 1:
            break
        await asyncio.sleep(0.05)
    await gw.gateway.stop()
    deferred, damaged = ids
    with db(gw) as conn:
        (blob,) = conn.execute("SELECT blob FROM queue WHERE id = ?", (damaged,)).fetchone()
        conn.execute("UPDATE queue SET blob = ? WHERE id = ?", (blob[:-1], damaged))
    return gw, deferred, damaged


def test_queue_commands_on_a_deferred_and_a_damaged_message(
    queued: tuple[RunningGateway, str, str],
) -> None:
    gw, deferred, damaged = queued
    outputs: list[str] = []

    def run(*args: str) -> tuple[int, str, str]:
        code, out, err = queue(gw, *args)
        outputs.extend((out, err))
        return code, out, err

    code, out, _ = run("list")
    assert code == 0
    [row] = [ln for ln in out.splitlines() if ln.startswith(deferred)]
    assert "alice@c4f.example" in row
    assert " waiting " in row
    assert row.endswith("451 4.7.1 Greylisted, try again later")
    assert damaged in out  # not yet found out: it is checked when read

    code, out, _ = run("show", damaged)
    assert code == 1
    assert "Integrity:  FAILED" in out
    code, out, _ = run("list")
    [row] = [ln for ln in out.splitlines() if ln.startswith(damaged)]
    assert "SET ASIDE (failed integrity check)" in row

    code, out, _ = run("show", deferred.lower())  # IDs are case-insensitive
    assert code == 0
    for line in (
        f"Queue ID:   {deferred}",
        "State:      waiting",
        "Attempts:   1",
        "Last error: 451 4.7.1 Greylisted, try again later",
        "Sender:     alice@c4f.example",
        "Recipient:  bob@c4f.example (waiting)",
        "Recipient:  carol@c4f.example (waiting)",
    ):
        assert line in out.splitlines()

    with db(gw) as conn:
        (later,) = conn.execute(
            "SELECT next_attempt FROM queue WHERE id = ?", (deferred,)
        ).fetchone()
    assert later > time.time() + 3000  # retry_initial is an hour
    assert run("retry", deferred)[1] == f"{deferred} will be tried now\n"
    with db(gw) as conn:
        (now,) = conn.execute("SELECT next_attempt FROM queue WHERE id = ?", (deferred,)).fetchone()
    assert now <= time.time()
    assert run("retry", "--all")[1] == "1 message(s) will be tried now\n"
    code, _, err = run("retry", "FFFFFFFFFFFF")
    assert (code, err.strip()) == (2, "c4f-gateway queue: error: FFFFFFFFFFFF: not in the queue")

    code, _, err = run("delete", damaged)  # no terminal to confirm on
    assert code == 2
    assert "add --yes" in err
    assert run("delete", damaged, "--yes")[1] == f"deleted {damaged}\n"
    code, out, _ = run("list")
    assert damaged not in out
    assert deferred in out
    assert run("delete", damaged, "--yes")[0] == 2

    assert run("delete", deferred, "--yes")[0] == 0
    assert run("list")[1] == "the queue is empty\n"
    for text in outputs:  # envelopes and states, never content
        assert "BODY" not in text
        assert "subject" not in text
