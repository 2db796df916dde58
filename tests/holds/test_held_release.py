"""A held message leaves only with proof of its approval (HOLD-1).

The attacker here can write the database file but holds none of the keys: one ``UPDATE``
of the queue row's state must not release a held message. Only the approval transaction
can write the proof (sealed with the spool key), and the delivery worker checks it when it
opens the message; a released row without it is set aside, logged and listed as such.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable

from support.delivery import until
from support.harness import RunningGateway
from support.held import arrived_for, send_held
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

StartGateway = Callable[..., Awaitable[RunningGateway]]
STAFF = "alice@c4f.example"
MANAGER = "mona@c4f.example"
FORGED_TO = "j.smith@partner.test"
APPROVED_TO = "k.jones@partner.test"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]}}


def _state(gw: RunningGateway, qid: str) -> str:
    found = [r.state for r in gw.gateway.spool.rows() if r.queue_id == qid]
    return found[0] if found else "(gone)"


async def test_hold1_state_update_without_the_keys_releases_nothing(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    forged = await send_held(gw, STAFF, [FORGED_TO], "[consent:refused] Forged release")
    approved = await send_held(gw, STAFF, [APPROVED_TO], "[consent:refused] Approved release")
    await until(lambda: len(arrived_for(upstream.arrived, STAFF)) == 2)  # the held notices

    # Write access to the file, no key: the release the approval would make, by hand.
    conn = sqlite3.connect(gw.settings.storage.database)
    try:
        conn.execute("DELETE FROM holds WHERE queue_id = ?", (forged,))
        conn.execute("UPDATE queue SET state = 'queued', next_attempt = 0 WHERE id = ?", (forged,))
        conn.commit()
    finally:
        conn.close()
    gw.gateway.holds.approve(approved, MANAGER, "Court order in place")
    gw.gateway.worker.wake()

    await until(lambda: arrived_for(upstream.arrived, APPROVED_TO))
    gw.gateway.worker.wake()
    await asyncio.sleep(0.5)  # several looks at the queue (poll_interval 0.05 s)
    assert arrived_for(upstream.arrived, FORGED_TO) == []
    assert len(arrived_for(upstream.arrived, APPROVED_TO)) == 1
    await until(lambda: _state(gw, forged) == "unapproved")
    assert _state(gw, approved) == "(gone)"  # delivered, its row removed

    # The admin sees it set aside, and why; retrying does not send it.
    listed = run_cli("queue", "list", "--config", gw.config_path)
    assert listed.returncode == 0, listed.stderr
    [line] = [ln for ln in listed.stdout.splitlines() if forged in ln]
    assert "SET ASIDE (released without a recorded approval)" in line
    retried = run_cli("queue", "retry", forged, "--config", gw.config_path)
    assert retried.returncode != 0
    assert "released without a recorded approval" in retried.stderr
    gw.gateway.worker.wake()
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, FORGED_TO) == []
    assert _state(gw, forged) == "unapproved"


async def test_hold1_a_message_set_aside_still_waits_for_its_decision(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    qid = await send_held(gw, STAFF, [FORGED_TO], "[safeguarding] [consent:obtained] Notes")
    conn = sqlite3.connect(gw.settings.storage.database)
    try:  # the hold row stays: only the queue's state is changed by hand
        conn.execute("UPDATE queue SET state = 'queued', next_attempt = 0 WHERE id = ?", (qid,))
        conn.commit()
    finally:
        conn.close()
    gw.gateway.worker.wake()
    await until(lambda: _state(gw, qid) == "unapproved")
    assert arrived_for(upstream.arrived, FORGED_TO) == []
    [held] = gw.gateway.holds.pending()  # the line manager still sees it, and decides
    assert held.queue_id == qid
    gw.gateway.holds.approve(qid, MANAGER)
    gw.gateway.worker.wake()
    await until(lambda: arrived_for(upstream.arrived, FORGED_TO))
    await asyncio.sleep(0.3)
    assert len(arrived_for(upstream.arrived, FORGED_TO)) == 1
    assert _state(gw, qid) == "(gone)"
