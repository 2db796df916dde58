"""`c4f-gateway register verify` says what it can prove and what it cannot.

REG-10: a delivery that follows a hold with no approval is named. REG-11: with no
checkpoint, a cut-off tail cannot be detected, so verify does not say "verified". REG-12:
entries written since the newest checkpoint are counted, and `serve` checkpoints every five
minutes by default.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import StartGateway
from support.delivery import until
from support.harness import message
from support.register import accepted, open_register, record, register_config
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.cli import main
from gateway.events import Evidence, HoldEvent, Outcome
from gateway.register.ledger import Register
from gateway.settings import load
from gateway.settings.register import register_settings

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return register_config(tmp_path)


def verify(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["register", "verify", "--config", str(config)])
    return code, capsys.readouterr().out


def _delivered(queue_id: str, at: float) -> Outcome:
    return Outcome(
        queue_id=queue_id,
        at=at,
        attempt=1,
        status="delivered",
        recipients=("j.smith@cafcass.example",),
        reply="250 2.0.0 OK",
        evidence=Evidence(host="smtp.example", tls_version="TLSv1.3"),
    )


def _seq(reg: Register, queue_id: str, kind: str) -> int:
    return max(e.seq for e in reg.entries() if e.queue_id == queue_id and e.kind == kind)


def test_reg10_delivery_after_a_hold_without_approval_is_named(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = open_register(config)
    now = time.time()
    # The entries the gateway writes: held, approved by a line manager, delivered ...
    with reg.store.transaction() as conn:
        reg.accepted(conn, accepted("APPROVED", now))
        reg.hold(conn, HoldEvent("APPROVED", now, "held", "", reasons=("consent refused",)))
        reg.hold(conn, HoldEvent("APPROVED", now + 1, "approved", "mona@c4f.example", "Order"))
        reg.outcome(conn, _delivered("APPROVED", now + 2))
    # ... and those it wrote when an edit of the queue's state released a held message:
    # held, then delivered, with no decision in between (or after a refusal).
    with reg.store.transaction() as conn:
        reg.accepted(conn, accepted("FORGED", now))
        reg.hold(conn, HoldEvent("FORGED", now, "held", "", reasons=("consent refused",)))
        reg.outcome(conn, _delivered("FORGED", now + 3))
        reg.accepted(conn, accepted("REFUSED", now))
        reg.hold(conn, HoldEvent("REFUSED", now, "held", "", reasons=("flagged safeguarding",)))
        reg.hold(conn, HoldEvent("REFUSED", now + 1, "refused", "mona@c4f.example", "No"))
        reg.outcome(conn, _delivered("REFUSED", now + 4))
    reg.checkpoint()

    code, out = verify(config, capsys)
    assert code == 1
    held, sent = _seq(reg, "FORGED", "hold"), _seq(reg, "FORGED", "outcome")
    refused, late = _seq(reg, "REFUSED", "hold"), _seq(reg, "REFUSED", "outcome")
    assert out.splitlines()[:2] == [
        f"REGISTER FAILED VERIFICATION: entry {sent} records a delivery attempt of FORGED, "
        f"which was held (entry {held}) and never approved",
        f"  also: entry {late} records a delivery attempt of REFUSED, which was refused "
        f"(entry {refused})",
    ]
    assert "APPROVED" not in out


def test_reg11_no_checkpoint_means_truncation_cannot_be_detected(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = open_register(config)
    record(reg, accepted("Q1", time.time()))
    record(reg, accepted("Q2", time.time()))

    code, out = verify(config, capsys)
    assert code == 1
    assert out.splitlines()[0] == (
        "REGISTER NOT VERIFIED: no checkpoint: truncation cannot be detected "
        f"(none in {register_settings(load(config)).checkpoint_dir}; `serve` writes them, "
        "or run `c4f-gateway register checkpoint`)"
    )
    assert out.splitlines()[1:] == ["The chain itself is intact: 2 entries."]

    assert main(["register", "checkpoint", "--config", str(config)]) == 0
    capsys.readouterr()
    assert verify(config, capsys) == (
        0,
        "Register verified: 2 entries, chain intact, 1 checkpoint(s) agree.\n",
    )


def test_reg12_entries_since_the_newest_checkpoint_are_counted(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = open_register(config)
    record(reg, accepted("Q1", time.time()))
    reg.checkpoint()
    for qid in ("Q2", "Q3"):
        record(reg, accepted(qid, time.time()))

    code, out = verify(config, capsys)
    assert code == 0
    assert out == (
        "Register verified: 3 entries, chain intact, 1 checkpoint(s) agree.\n"
        "Note: not yet checkpointed: 2 entries (2 to 3): a cut-off among them cannot be "
        "detected until the next checkpoint\n"
    )


async def test_reg12_serve_checkpoints_every_five_minutes_by_default(
    start_gateway: StartGateway, upstream: Upstream, config: Path
) -> None:
    assert load(config).register.checkpoint_interval == 300.0

    # The same job, on a shorter interval: entries added while `serve` runs are
    # checkpointed without a stop or a `register checkpoint`.
    gw = await start_gateway(upstream=upstream, config={"register": {"checkpoint_interval": 0.2}})
    gw.add_staff(ALICE)
    for _ in range(2):
        _e, reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB]))
        assert "Queued as" in reply
    await until(lambda: len(upstream.arrived) == 2)
    register = gw.gateway.register
    assert register is not None
    count = len(register.entries())

    def covered() -> bool:
        done = run_cli("register", "verify", "--config", gw.config_path)
        return done.returncode == 0 and done.stdout == (
            f"Register verified: {count} entries, chain intact, 1 checkpoint(s) agree.\n"
        )

    for _ in range(50):
        if await asyncio.to_thread(covered):
            break
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(covered)
