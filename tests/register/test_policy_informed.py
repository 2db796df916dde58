"""Policy, "Inter-agency working": "whether the person in question was subsequently
informed about the information transfer".

For every disclosure made without consent (refused, not sought, not recorded) the answer
is a duty, due ``[register] inform_within_days`` (14) after sending, answered by yes with
a date or no with a reason; `register list --inform-due` lists it until then.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from support.harness import RunningGateway, message
from support.register import DAY, T0, Clock, accepted, make_register, record
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.events import HoldEvent
from gateway.holds.duties import DutyReminder
from gateway.register.criteria import Filters
from gateway.register.formats import local_time
from gateway.register.ledger import Register
from gateway.settings.register import register_settings
from gateway.store import Store

StartGateway = Callable[..., Awaitable[RunningGateway]]
STAFF = "alice@c4f.example"
CONTACT = "j.smith@cafcass.example"
DUE = Filters(inform_due=True)


async def _gateway(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path, **register: object
) -> RunningGateway:
    gw = await start_gateway(
        upstream=upstream,
        folder=tmp_path / "gw",
        config={"pipeline": {"filters": ["sender", "disclosure"]}, "register": register},
    )
    gw.add_staff(STAFF)
    return gw


def _register(gw: RunningGateway, clock: Callable[[], float]) -> Register:
    """A second reader of the gateway's register, with its own clock."""
    settings = register_settings(gw.settings)
    return Register.from_settings(Store(gw.settings.storage.database), settings, clock=clock)


async def _sent(gw: RunningGateway, upstream: Upstream, subject: str, count: int) -> None:
    errors, _ = await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    assert errors == {}
    await upstream.wait_for(count)


async def test_a_disclosure_without_consent_is_due_after_14_days_until_answered(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    gw = await _gateway(start_gateway, upstream, tmp_path)
    sent_at = time.time()
    await _sent(gw, upstream, "[consent:not-sought] [reason:Court direction] Report", 1)
    await _sent(gw, upstream, "[consent:obtained] Letter", 2)  # consent: no duty
    await _sent(gw, upstream, "[consent:refused] [reason:Risk] [informed:yes] Notes", 3)

    def due(at: float) -> list[int]:
        return [r.seq for r in _register(gw, lambda: at).records(DUE)]

    [first] = [r for r in _register(gw, time.time).records() if r.consent == "not-sought"]
    assert first.inform_open
    assert abs(first.inform_due - (first.at + 14 * DAY)) < 1e-6
    assert first.at >= sent_at - 1
    assert due(first.at + 13 * DAY) == []
    assert due(first.at + 14 * DAY + 1) == [first.seq]  # only the undisclosed-consent one

    later = _register(gw, lambda: first.at + 15 * DAY)
    later.annotate(first.seq, "manager", informed="yes", informed_on="2026-12-20")
    assert later.records(DUE) == []
    answered = later.record(first.seq)
    assert answered is not None
    assert (answered.informed, answered.informed_on, answered.inform_open) == (
        "yes",
        "2026-12-20",
        False,
    )


async def test_cli_lists_the_overdue_duty_and_takes_the_answer(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    # inform_within_days = 0: due as soon as it is sent, so the real clock has passed it.
    gw = await _gateway(start_gateway, upstream, tmp_path, inform_within_days=0)
    await _sent(gw, upstream, "[consent:not-sought] [reason:Court direction] [family:F-7] X", 1)
    config = gw.config_path
    await asyncio.sleep(0.01)

    listed = run_cli("register", "list", "--inform-due", "--config", config)
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("1    ")]
    assert "F-7" in row
    assert "person informed due " in row
    assert listed.stdout.endswith("1 entry; times are local.\n")

    no_date = run_cli("register", "annotate", "1", "--informed", "yes", "--config", config)
    assert (no_date.returncode, no_date.stdout) == (2, "")
    assert no_date.stderr.strip().splitlines() == [
        "c4f-gateway register: error: the person was informed: give the date they were told "
        "(YYYY-MM-DD)"
    ]
    no_reason = run_cli("register", "annotate", "1", "--informed", "no", "--config", config)
    assert no_reason.returncode == 2
    assert "the person was not informed: give the reason why not" in no_reason.stderr

    answer = (
        "--informed",
        "no",
        "--informed-reason",
        "Informing the father puts the child at risk",
    )
    done = run_cli("register", "annotate", "1", *answer, "--by", "mona", "--config", config)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"Recorded follow-up \d+ to entry 1\.", done.stdout.splitlines()[-1])
    after = run_cli("register", "list", "--inform-due", "--config", config)
    assert (after.returncode, after.stdout) == (0, "No entries match.\n")
    shown = run_cli("register", "show", "1", "--config", config)
    assert "  Person informed:       no: Informing the father puts the child at risk\n" in (
        shown.stdout
    )
    exported = run_cli("register", "export", "--config", config)
    [cells] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert cells["informed"] == "no"
    assert cells["informed_reason"] == "Informing the father puts the child at risk"
    assert cells["inform_due"] == ""


def _held(reg: Register, seq_queue: str, action: str) -> None:
    with reg.store.transaction() as conn:
        reg.hold(conn, HoldEvent(seq_queue, T0 + 1, "held", "", reasons=("r",)))
        if action:
            reg.hold(conn, HoldEvent(seq_queue, T0 + 2, action, "mona"))


def test_only_what_left_without_consent_is_a_duty(tmp_path: Path) -> None:
    clock = Clock(T0 + 30 * DAY)
    reg = make_register(tmp_path, clock)
    without = {"consent": "refused", "reason": "Risk", "external": True}
    record(reg, accepted("SENT", T0, disclosure=without))  # 1: a duty
    record(reg, accepted("OBTAINED", T0, disclosure={"consent": "obtained", "external": True}))
    record(reg, accepted("INSIDE", T0, disclosure={**without, "external": False}))
    record(reg, accepted("UNSET", T0, disclosure={"consent": "not-recorded", "external": True}))
    record(reg, accepted("HELD", T0, disclosure=without))  # 5: held, then refused: never left
    _held(reg, "HELD", "refused")
    record(reg, accepted("WAITING", T0, disclosure=without))  # 8: still held: not yet sent
    _held(reg, "WAITING", "")
    record(reg, accepted("APPROVED", T0, disclosure=without))  # 10: due from its approval
    _held(reg, "APPROVED", "approved")
    by_queue = {r.entry.queue_id: r for r in reg.records()}
    assert [q for q, r in by_queue.items() if r.inform_duty] == ["SENT", "UNSET", "APPROVED"]
    assert by_queue["APPROVED"].inform_due == T0 + 2 + 14 * DAY
    assert [r.entry.queue_id for r in reg.records(DUE)] == ["SENT", "UNSET", "APPROVED"]
    reg.annotate(1, "mona", informed="yes", informed_on="2023-11-20")
    assert [r.entry.queue_id for r in reg.records(DUE)] == ["UNSET", "APPROVED"]


def test_a_no_without_its_reason_leaves_the_duty_open(tmp_path: Path) -> None:
    reg = make_register(tmp_path, Clock(T0 + 30 * DAY))
    tagged_no = {"consent": "not-sought", "reason": "Court", "informed": "no", "external": True}
    record(reg, accepted("Q1", T0, disclosure=tagged_no))  # [informed:no] when sent
    [r] = reg.records(DUE)
    assert (r.informed, r.inform_open) == ("no", True)
    reg.annotate(1, "mona", informed="no", informed_reason="Whereabouts must stay unknown")
    assert reg.records(DUE) == []


async def test_the_daily_reminder_lists_the_overdue_duty_for_the_senders_manager(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    gw = await _gateway(start_gateway, upstream, tmp_path)
    gw.add_staff("mona@c4f.example", role="manager")
    gw.add_staff("root@c4f.example", role="admin")
    gw.add_staff("bob@c4f.example", managers=["mona@c4f.example"])
    subject = "[consent:refused] [reason:Risk to the child] Contact notes for the court"
    errors, _ = await gw.send(
        "bob@c4f.example", [CONTACT], message("bob@c4f.example", [CONTACT], subject=subject)
    )
    assert errors == {}
    await upstream.wait_for(1)
    duties = gw.gateway.duties
    assert duties is not None
    [sent] = _register(gw, time.time).records()
    assert await gw.gateway.store.run(duties.remind, sent.at + 13 * DAY) == 0  # not due yet
    later = sent.at + 15 * DAY
    assert await gw.gateway.store.run(duties.remind, later) == 1  # mona only
    gw.gateway.worker.wake()
    arrived = await upstream.wait_for(2)
    reminder = arrived[1]
    assert reminder.rcpt_tos == ["mona@c4f.example"]
    text = reminder.content.decode()
    assert 'Subject: Reminder: register duties: 1 "person informed" overdue' in text
    assert (
        f"  entry {sent.seq}  from bob@c4f.example, to cafcass.example, sent "
        f"{local_time(sent.at)}, due {local_time(sent.inform_due)[:10]}"
    ) in text
    for secret in ("Contact notes", "court", "Risk to the child"):
        assert secret not in text  # never the subject, nor the reason
    # Once a day, restart-safe: the reminder is in the register; answered, it stops.
    assert await gw.gateway.store.run(duties.remind, later) == 0
    register = gw.gateway.register
    assert register is not None
    restarted = DutyReminder(register, gw.gateway.holds.notify, gw.gateway.staff)
    assert await gw.gateway.store.run(restarted.remind, later) == 0
    reg = _register(gw, lambda: later)
    reg.annotate(sent.seq, "mona", informed="yes", informed_on="2026-12-21")
    assert await gw.gateway.store.run(duties.remind, later + 2 * DAY) == 0
