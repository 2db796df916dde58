"""A decision completes the register's record (the approval loop).

Through the running gateway and the CLI in its own process: approving with
``--consent obtained`` makes the entry complete and the CSV shows the approver, the time
and the note; a note given when consent was not obtained is the entry's reason for
sharing; a refused message was never sent, so its entry is not "incomplete".
"""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from conftest import StartGateway
from support.delivery import until
from support.harness import RunningGateway, message
from support.held import arrived_for, queue_id, record_of
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

STAFF = "alice@c4f.example"
MANAGER = "mona@c4f.example"
CONTACT = "j.smith@partner.example"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]}}


@pytest.fixture
async def gw(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    return gw


async def held(gw: RunningGateway, subject: str) -> str:
    errors, reply = await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    assert errors == {} and "held for approval" in reply, reply
    return queue_id(reply)


async def cli(gw: RunningGateway, *args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(run_cli, *args, "--config", gw.config_path)
    return done.returncode, done.stdout, done.stderr


async def test_approving_with_consent_obtained_completes_the_entry(
    gw: RunningGateway, upstream: Upstream
) -> None:
    qid = await held(gw, "Contact report")  # no consent tag: held, "not recorded"
    before = record_of(gw, qid)
    assert (before.consent, before.missing) == ("not-recorded", ["consent"])

    code, out, err = await cli(gw, "held", "approve", qid, "--by", MANAGER, "--consent", "obtained")
    assert code == 0, err
    gw.gateway.worker.wake()
    await until(lambda: arrived_for(upstream.arrived, CONTACT))
    r = record_of(gw, qid)
    assert (r.consent, r.complete, r.approved_by) == ("obtained", True, MANAGER)

    code, out, err = await cli(gw, "register", "export", "--format", "csv")
    assert code == 0, err
    [row] = [x for x in csv.DictReader(io.StringIO(out)) if x["entry"] == str(r.seq)]
    assert (row["consent"], row["complete"], row["approved_by"]) == ("obtained", "yes", MANAGER)
    assert row["approved_at"] and row["missing"] == ""
    code, out, _ = await cli(gw, "register", "show", str(r.seq))
    assert f"Approved:              by {MANAGER} at " in out
    assert "consent recorded as obtained" in out


async def test_the_approval_note_is_the_reason_for_sharing(
    gw: RunningGateway, upstream: Upstream
) -> None:
    qid = await held(gw, "[consent:not-sought] Court bundle")  # the reason is missing
    assert record_of(gw, qid).missing == ["reason"]
    note = "Court order of 3 March; the family's solicitor was told"
    code, _, err = await cli(gw, "held", "approve", qid, "--by", MANAGER, "--note", note)
    assert code == 0, err
    r = record_of(gw, qid)
    assert (r.consent, r.reason, r.complete, r.approval_note) == ("not-sought", note, True, note)

    # Without a note, consent refused needs one; --consent obtained alone does not.
    qid = await held(gw, "[consent:refused] [reason:Risk] Notes")
    code, _, err = await cli(gw, "held", "approve", qid, "--by", MANAGER, "--consent", "refused")
    assert code == 2 and "approving needs a note" in err
    code, _, err = await cli(gw, "held", "approve", qid, "--by", MANAGER, "--consent", "maybe")
    assert code == 2 and "invalid choice: 'maybe'" in err


async def test_a_refused_message_is_not_incomplete(gw: RunningGateway, upstream: Upstream) -> None:
    qid = await held(gw, "Draft")
    code, _, err = await cli(gw, "held", "refuse", qid, "--by", MANAGER, "--note", "Not yet")
    assert code == 0, err
    r = record_of(gw, qid)
    assert (r.approval, r.missing, r.complete) == ("refused", [], True)
    code, out, _ = await cli(gw, "register", "list")
    [line] = [x for x in out.splitlines() if x.startswith(f"{r.seq} ") and STAFF in x]
    assert "1 entry;" in out  # the notice to Alice is recorded, but not listed as a disclosure
    code, out, _ = await cli(gw, "register", "list", "--include-notices")
    assert code == 0 and "4 entries;" in out  # held notices to Alice and Mona, the refusal
    assert "incomplete" not in line and "refused by a manager" in line
