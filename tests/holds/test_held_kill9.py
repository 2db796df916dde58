"""kill -9 of the real ``c4f-gateway serve`` while messages are held for approval (issue 7).

A held message was answered 250, so it must survive a crash like any other (RFC 5321
6.1), and it must still not leave: after a SIGKILL and a restart it is still held (its
``holds`` row and its queue state), nothing held reached the upstream, the register chain
verifies, and an approval made afterwards (through :class:`gateway.holds.service.Holds` on the
same database file, as ``c4f-gateway held approve`` does) delivers it once; a second
kill during that delivery may at most repeat it (DUR-7, at least once), never lose it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
from support.harness import message
from support.pki import TestCA
from support.subprocess_gateway import GatewayProcess, connect, prepare, run_cli
from support.upstream import Arrived, Upstream

from gateway.directory.staff import StaffDirectory
from gateway.holds.service import Holds
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.store import Store

ALICE = "alice@c4f.example"
MANAGER = "mona@c4f.example"
BOB = "bob@c4f.example"  # internal: consent is not needed, never held
CONTACT = "j.smith@partner.test"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]}}
HELD = 3

pytestmark = pytest.mark.slow


@contextmanager
def holds_on(settings: Settings) -> Iterator[Holds]:
    """What ``c4f-gateway held`` opens: Holds on the gateway's own database file."""
    store = Store(settings.storage.database)
    try:
        yield Holds.open(store, settings, Register.from_settings(store, settings.register))
    finally:
        store.close()


def _message_id(arrived: Arrived) -> str:
    for line in arrived.content.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def _copies(upstream: Upstream, message_id: str) -> int:
    return sum(_message_id(a) == message_id for a in upstream.arrived)


async def _until(what: Callable[[], object], timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if what():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def _held_rows(gw: GatewayProcess) -> dict[str, str]:
    """queue ID -> queue state, for every row of the ``holds`` table."""
    rows = gw.sql("SELECT h.queue_id, q.state FROM holds h LEFT JOIN queue q ON q.id = h.queue_id")
    return {qid: state for qid, state in rows}


def _verify_register(config: Path) -> None:
    done = run_cli("register", "verify", "--config", config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chain intact" in done.stdout


async def test_held_messages_survive_kill9_stay_held_and_leave_once_approved(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    config = prepare(
        tmp_path, ca, upstream_port=upstream.port, config=CHAIN, staff=(ALICE, MANAGER, BOB)
    )
    store = Store(GatewayProcess(config).settings.storage.database)
    try:
        staff = StaffDirectory(store)
        assert staff.set_role(MANAGER, "manager")
        assert staff.set_managers(ALICE, (MANAGER,))
    finally:
        store.close()
    gw = await GatewayProcess(config).start()

    # Three held messages and one ordinary one, each answered 250; the kill lands as
    # soon as the last 250 is read.
    held_ids = [f"<held-{n}@kill9.test>" for n in range(HELD)]
    plain_id = "<plain@kill9.test>"
    outgoing = [(CONTACT, mid, "[consent:refused] [reason:x] Report") for mid in held_ids]
    outgoing.insert(1, (BOB, plain_id, "Rota"))
    client = await connect(gw.port, ca)
    queue_ids: dict[str, str] = {}  # Message-ID -> queue ID
    try:
        for rcpt, mid, subject in outgoing:
            msg = message(ALICE, [rcpt], subject=subject, Message_ID=mid)
            errors, reply = await client.sendmail(ALICE, [rcpt], msg.as_bytes(policy=SMTP_POLICY))
            assert errors == {}
            assert reply.startswith("2.0.0 Queued as "), reply
            assert ("held for approval" in reply) == (rcpt == CONTACT), reply
            queue_ids[mid] = reply.split("Queued as ")[1].split(",")[0].split()[0]
    finally:
        await gw.kill()
        client.close()
    held_qids = {queue_ids[mid] for mid in held_ids}
    assert _held_rows(gw) == dict.fromkeys(held_qids, "held")

    # Restarted: the ordinary message and the notices (to the sender, and to her manager
    # who must decide) leave, nothing held does.
    await gw.start()
    await _until(lambda: _copies(upstream, plain_id))
    await _until(lambda: sum(a.rcpt_tos == [ALICE] for a in upstream.arrived) >= HELD)
    await asyncio.sleep(0.5)  # room for a held message to (wrongly) leave
    assert {r for a in upstream.arrived for r in a.rcpt_tos} == {BOB, ALICE, MANAGER}
    # Notices come from [notices] from (default postmaster@ the first domain).
    notices = [a.mail_from for a in upstream.arrived if a.rcpt_tos == [ALICE]]
    assert set(notices) == {"postmaster@c4f.example"}
    assert _held_rows(gw) == dict.fromkeys(held_qids, "held")
    with holds_on(gw.settings) as holds:
        pending = holds.pending()
        assert {h.queue_id for h in pending} == held_qids
        assert {(h.staff, h.managers, h.needs_note) for h in pending} == {(ALICE, (MANAGER,), True)}
    _verify_register(config)

    # Approved while the restarted gateway runs: it leaves exactly once.
    first, second, third = held_ids
    with holds_on(gw.settings) as holds:
        holds.approve(queue_ids[first], MANAGER, "Court order in place")
    await _until(lambda: _copies(upstream, first))
    await asyncio.sleep(0.5)
    assert _copies(upstream, first) == 1
    assert _held_rows(gw) == dict.fromkeys({queue_ids[second], queue_ids[third]}, "held")

    # Approved, then killed as its delivery starts: after the restart it arrives, at most
    # once more than once (a kill between the upstream's 250 and our record, DUR-7).
    started = len(upstream.transcript)
    with holds_on(gw.settings) as holds:
        holds.approve(queue_ids[second], MANAGER, "Discussed with the family")
    await _until(lambda: f"RCPT TO:<{CONTACT}>" in upstream.transcript[started:], timeout=10)
    await gw.kill()
    await gw.start()
    await _until(lambda: _copies(upstream, second))
    await _until(lambda: queue_ids[second] not in [r[0] for r in gw.sql("SELECT id FROM queue")])
    await asyncio.sleep(0.5)
    await gw.stop()
    assert 1 <= _copies(upstream, second) <= 2
    assert _copies(upstream, first) == 1
    assert _copies(upstream, third) == 0
    assert _held_rows(gw) == {queue_ids[third]: "held"}
    assert {r for a in upstream.arrived for r in a.rcpt_tos} == {BOB, ALICE, MANAGER, CONTACT}
    _verify_register(config)
