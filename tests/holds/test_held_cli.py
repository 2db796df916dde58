"""``c4f-gateway held list|show|approve|refuse|withdraw`` against a running gateway.

Real SMTP submissions are held by the approval filter; the CLI runs as a separate process
on the same config and database, as an admin on the gateway host would run it, while the
gateway keeps running; its delivery worker picks up an approval from the database by
itself. What is asserted: exit codes, output lines, what reaches the real TLS upstream
(bytes, exactly once or never), what the sender is told, and the register rows.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from conftest import StartGateway
from support.delivery import until
from support.harness import RunningGateway
from support.held import arrived_for, notices, record_of, send_held
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.cli import main
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_sealed import keyring_for

STAFF = "alice@c4f.example"
LONER = "lee@c4f.example"  # no line manager configured
MANAGER = "mona@c4f.example"
OTHER_MANAGER = "omar@c4f.example"
ADMIN = "ada@c4f.example"
CONTACT = "j.smith@partner.example"
CHAIN = {
    "pipeline": {"filters": ["sender", "disclosure", "contacts", "approval", "disclaimer"]},
}
NOTICE_START = b"This document is strictly confidential"  # the mandatory notice
CLI_ERROR = "c4f-gateway held: error: "


@pytest.fixture
async def gw(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(OTHER_MANAGER, role="manager")
    gw.add_staff(ADMIN, role="admin")
    gw.add_staff(STAFF, managers=[MANAGER])
    gw.add_staff(LONER)
    today = datetime.now(UTC).date()
    ContactRepository(gw.gateway.store, keyring=keyring_for(gw.settings)).add(
        Contact(
            id=0,
            kind="address",
            address=CONTACT,
            display_name="Jane Smith",
            organisation="Partner Org",
            role="social worker",
            approved_by="Sam Admin",
            approved_on=(today - timedelta(days=30)).isoformat(),
            verified_how="phoned back",
            review_due=(today + timedelta(days=300)).isoformat(),
        ),
        "Sam Admin",
    )  # C-001
    return gw


async def cli(gw: RunningGateway, *args: str) -> tuple[int, str, str]:
    """``c4f-gateway ARGS --config ...`` in its own process; the gateway keeps running."""
    done = await asyncio.to_thread(run_cli, *args, "--config", gw.config_path)
    return done.returncode, done.stdout, done.stderr


async def held(gw: RunningGateway, *args: str) -> tuple[int, str, str]:
    return await cli(gw, "held", *args)


def rows(out: str, qid: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith(qid)]


async def test_held_listed_shown_to_the_manager_only_then_approved_with_a_note_and_sent_once(
    gw: RunningGateway, upstream: Upstream
) -> None:
    subject = "[consent:refused] [reason:Risk of harm] [family:F-12] Contact report"
    qid = await send_held(gw, STAFF, [CONTACT], subject, attach="plan.pdf")
    await until(lambda: arrived_for(upstream.arrived, STAFF))  # the sender's notice
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []

    # list: who, when, why and who decides; never the content.
    code, out, _ = await held(gw, "list")
    assert code == 0
    assert re.split(r"\s{2,}", out.splitlines()[0]) == [
        "Queue ID",
        "Sender",
        "Held since",
        "Expires",
        "Held because",
        "Who can decide",
    ]
    [row] = rows(out, qid)
    assert STAFF in row and "consent refused" in row
    assert row.endswith(f"{MANAGER} (or an admin)")
    for secret in ("Contact report", "Risk of harm", "F-12", CONTACT, "plan.pdf"):
        assert secret not in out
    for login in (MANAGER, STAFF, ADMIN):  # the manager, the sender (to withdraw), an admin
        code, out, _ = await held(gw, "list", "--by", login)
        assert (code, len(rows(out, qid))) == (0, 1), login
    code, out, _ = await held(gw, "list", "--by", OTHER_MANAGER)
    assert (code, out) == (
        0,
        f"no messages are waiting for approval that {OTHER_MANAGER} may decide on or withdraw\n",
    )
    code, _, err = await held(gw, "list", "--by", "nobody@c4f.example")
    assert (code, err) == (2, f"{CLI_ERROR}there is no staff account nobody@c4f.example\n")

    # show: the details, decrypted for the line manager (IDs in any case) ...
    code, out, _ = await held(gw, "show", qid.lower(), "--by", MANAGER.upper())
    assert code == 0
    lines = out.splitlines()
    for line in (
        f"Queue ID:         {qid}",
        f"Sender:           {STAFF}",
        f"Recipient:        {CONTACT} (Jane Smith, Partner Org, contact C-001)",
        "Consent:          refused",
        "Reason:           Risk of harm",
        "Family reference: F-12",
        "Safeguarding:     no",
        "Subject:          Contact report",
        "Attachments:      plan.pdf",
        "Held because:     consent refused",
        f"Who can decide:   {MANAGER} (or an admin)",
        "Note to approve:  required (consent refused)",
    ):
        assert line in lines, line
    # ... and for nobody else.
    for login in (OTHER_MANAGER, LONER):
        code, out, err = await held(gw, "show", qid, "--by", login)
        assert code == 2
        assert err == (
            f"{CLI_ERROR}{login} may not see {qid}: its details are shown only to its "
            f"sender, their line managers ({MANAGER}) and admins\n"
        )
        assert "Contact report" not in out + err

    # approve: never the sender, never another manager, not without a note.
    for login, why in (
        (STAFF, "nobody may approve or refuse their own message"),
        (OTHER_MANAGER, f"{OTHER_MANAGER} is not a line manager of {STAFF}; ask {MANAGER}"),
    ):
        code, _, err = await held(gw, "approve", qid, "--by", login, "--note", "fine")
        assert (code, err.startswith(CLI_ERROR + why)) == (2, True), err
    code, out, err = await held(gw, "approve", qid, "--by", MANAGER)
    assert (code, out) == (2, "")
    assert err == (
        f"{CLI_ERROR}consent was refused, not sought or not recorded: approving needs a note "
        "giving the reason for sharing (or record that consent was obtained)\n"
    )
    assert gw.gateway.holds.get(qid) is not None
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []

    note = "Discussed: court order in place"
    code, out, _ = await held(gw, "approve", qid.lower(), "--by", MANAGER, "--note", note)
    assert (code, out) == (
        0,
        f"approved: {qid} will be delivered shortly; the approval is in the register\n",
    )
    code, _, err = await held(gw, "approve", qid, "--by", MANAGER, "--note", note)
    assert (code, err) == (2, f"{CLI_ERROR}no message {qid} is waiting for approval\n")

    # The running gateway's worker finds the approval in the database by itself.
    await until(lambda: arrived_for(upstream.arrived, CONTACT))
    await until(lambda: record_of(gw, qid).status == "delivered")
    await asyncio.sleep(0.3)
    [sent] = arrived_for(upstream.arrived, CONTACT)
    assert sent.content.count(NOTICE_START) == 1
    parsed = message_from_bytes(sent.content, policy=policy.default)
    assert parsed["Subject"] == "Contact report"

    r = record_of(gw, qid)
    assert [(s["action"], s["by"], s["note"]) for s in r.approval_steps] == [
        ("held", "", ""),
        ("approved", MANAGER, note),
    ]
    assert [f.kind for f in r.followups] == ["hold", "hold", "outcome"]
    code, out, _ = await cli(gw, "register", "show", str(r.seq))
    assert code == 0
    lines = out.split("Follow-ups:\n")[1].splitlines()
    said = [ln.split(f"#{f.seq} ", 1)[1] for ln, f in zip(lines, r.followups, strict=True)]
    assert said[:2] == [
        "held for line-manager approval: consent refused",
        f"approved for sending by {MANAGER}; note: {note}",
    ]
    assert said[2].startswith(f"delivered (attempt 1) to {CONTACT} via localhost:")

    assert await held(gw, "list") == (0, "no messages are waiting for approval\n", "")


async def test_refused_with_a_note_never_arrives_and_the_sender_gets_the_note(
    gw: RunningGateway, upstream: Upstream
) -> None:
    qid = await send_held(
        gw, STAFF, [CONTACT], "[consent:not-sought] [reason:urgent] Report \x1b[2J"
    )
    code, out, _ = await held(gw, "show", qid, "--by", MANAGER)
    assert "Subject:          Report ?[2J" in out.splitlines()  # no terminal control codes
    assert "Note to approve:  required (consent not sought)" in out.splitlines()
    code, _, err = await held(gw, "refuse", qid, "--by", MANAGER)
    assert code == 2 and "the following arguments are required: --note" in err
    code, _, err = await held(gw, "refuse", qid, "--by", MANAGER, "--note", "  ")
    assert (code, err) == (2, f"{CLI_ERROR}refusing needs a note for the sender\n")
    code, _, err = await held(gw, "refuse", qid, "--by", STAFF, "--note", "no")
    assert (code, err) == (2, f"{CLI_ERROR}nobody may approve or refuse their own message\n")
    code, _, err = await held(gw, "approve", "FFFFFFFFFFFF", "--by", MANAGER, "--note", "x")
    assert (code, err) == (2, f"{CLI_ERROR}no message FFFFFFFFFFFF is waiting for approval\n")

    code, out, _ = await held(gw, "refuse", qid, "--by", MANAGER, "--note", "Seek consent first")
    assert (code, out) == (
        0,
        f"refused: {qid} is deleted and will not be sent; {STAFF} is told, with your note\n",
    )
    await until(lambda: len(arrived_for(upstream.arrived, STAFF)) == 2)  # held, then refused
    await asyncio.sleep(0.5)
    assert arrived_for(upstream.arrived, CONTACT) == []
    [refusal] = notices(upstream.arrived, STAFF, "Not sent:")  # in either order
    assert f"your message {qid} was refused" in refusal
    assert "Seek consent first" in refusal and MANAGER in refusal

    code, _, err = await held(gw, "show", qid, "--by", MANAGER)
    assert (code, err) == (2, f"{CLI_ERROR}no message {qid} is waiting for approval\n")
    r = record_of(gw, qid)
    assert r.approval == "refused"
    assert (r.approval_steps[-1]["by"], r.approval_steps[-1]["note"]) == (
        MANAGER,
        "Seek consent first",
    )
    code, out, _ = await cli(gw, "queue", "list")
    assert qid not in out


async def test_sender_without_a_manager_is_released_by_an_admin_only(
    gw: RunningGateway, upstream: Upstream
) -> None:
    qid = await send_held(gw, LONER, [CONTACT], "[safeguarding] [consent:obtained] Concern")
    code, out, _ = await held(gw, "list")
    [row] = rows(out, qid)
    assert "flagged safeguarding" in row
    assert row.endswith("admins only (no line manager configured)")
    assert (await held(gw, "list", "--by", MANAGER))[1].startswith("no messages")

    code, _, err = await held(gw, "show", qid, "--by", MANAGER)
    assert (code, err) == (
        2,
        f"{CLI_ERROR}{MANAGER} may not see {qid}: its details are shown only to its sender "
        "and admins (no line manager is configured)\n",
    )
    code, out, _ = await held(gw, "show", qid, "--by", ADMIN)
    assert code == 0
    for line in (
        "Safeguarding:     yes",
        "Consent:          obtained",
        "Who can decide:   admins only (no line manager configured)",
        "Note to approve:  optional",
    ):
        assert line in out.splitlines(), line

    for manager in (MANAGER, OTHER_MANAGER):
        code, _, err = await held(gw, "approve", qid, "--by", manager)
        assert (code, err) == (
            2,
            f"{CLI_ERROR}{LONER} has no line manager configured: only an admin can decide\n",
        )
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []
    code, out, _ = await held(gw, "approve", qid, "--by", ADMIN)  # consent obtained: no note
    assert (code, out.startswith(f"approved: {qid} ")) == (0, True)
    await until(lambda: arrived_for(upstream.arrived, CONTACT))
    await asyncio.sleep(0.3)
    assert len(arrived_for(upstream.arrived, CONTACT)) == 1
    assert record_of(gw, qid).approval_steps[-1]["by"] == ADMIN


async def test_withdraw_by_the_sender_and_queue_commands_cannot_bypass_a_decision(
    gw: RunningGateway, upstream: Upstream
) -> None:
    qid = await send_held(gw, STAFF, [CONTACT], "[consent:refused] [reason:r] One")
    code, out, _ = await cli(gw, "queue", "list")
    [row] = rows(out, qid)
    assert " HELD for approval " in row
    refusal = (
        f"c4f-gateway queue: error: {qid} is held for approval: "
        "use `c4f-gateway held refuse|approve`\n"
    )
    for args in (("delete", qid, "--yes"), ("delete", qid.lower()), ("retry", qid)):
        assert await cli(gw, "queue", *args) == (2, "", refusal), args
    code, out, _ = await cli(gw, "queue", "show", qid)
    assert "State:      HELD for approval" in out.splitlines()
    assert gw.gateway.holds.get(qid) is not None

    code, _, err = await held(gw, "withdraw", qid, "--by", MANAGER)
    assert (code, err) == (2, f"{CLI_ERROR}only the sender may withdraw a held message\n")
    code, out, _ = await held(gw, "show", qid, "--by", STAFF)  # the sender may see their own
    assert f"You may:          withdraw it: c4f-gateway held withdraw {qid}" in out.splitlines()
    code, out, _ = await held(gw, "withdraw", qid.lower(), "--by", STAFF)
    assert (code, out) == (0, f"withdrawn: {qid} is deleted and will not be sent\n")
    assert record_of(gw, qid).approval == "withdrawn"
    assert qid not in (await cli(gw, "queue", "list"))[1]
    await asyncio.sleep(0.5)
    assert arrived_for(upstream.arrived, CONTACT) == []


@pytest.mark.parametrize("action", ["list", "show", "approve", "refuse", "withdraw", None])
def test_help_of_each_subcommand(action: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["held", *([action] if action else []), "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: c4f-gateway held {action or ''}".rstrip())
    if action not in ("list", None):
        assert "--by LOGIN" in out


def test_held_is_listed_in_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "    held " in capsys.readouterr().out
