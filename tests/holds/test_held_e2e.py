"""Line-manager approval end to end: held messages over real SMTP, decided through the
engine's own :class:`gateway.holds.service.Holds`, delivered (or not) to a real TLS upstream.

The CLI and console drive the same object; their own tests are test_held_cli.py and
test_held_web.py. What is asserted here is what leaves, what the sender is told, and what
the register says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from support.delivery import until
from support.harness import RunningGateway, message
from support.held import arrived_for, notices, queue_id, record_of
from support.upstream import Upstream

from gateway.holds.service import HoldError

StartGateway = Callable[..., Awaitable[RunningGateway]]
STAFF = "alice@c4f.example"
LONER = "lee@c4f.example"  # no line manager configured
MANAGER = "mona@c4f.example"
OTHER_MANAGER = "omar@c4f.example"
ADMIN = "ada@c4f.example"
CONTACT = "j.smith@partner.test"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]}}
NOTICE_START = b"This document is strictly confidential"  # the mandatory notice


async def _gateway(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(OTHER_MANAGER, role="manager")
    gw.add_staff(ADMIN, role="admin")
    gw.add_staff(STAFF, managers=[MANAGER])
    gw.add_staff(LONER)
    return gw


async def _send(gw: RunningGateway, login: str, subject: str) -> str:
    errors, reply = await gw.send(login, [CONTACT], message(login, [CONTACT], subject=subject))
    assert errors == {}
    return reply


async def test_held_message_waits_then_leaves_once_after_approval_with_note(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    reply = await _send(gw, STAFF, "[consent:refused] [reason:Risk of harm] Contact report")
    assert "held for approval" in reply
    qid = queue_id(reply)
    holds = gw.gateway.holds

    # Only notices leave. The sender's names the message as her mail program shows it
    # (subject, recipient, time), why it is held and what to do; never the body.
    await until(lambda: arrived_for(upstream.arrived, STAFF))
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []
    [notice] = arrived_for(upstream.arrived, STAFF)
    assert notice.mail_from == "postmaster@c4f.example"  # [notices] from, by default
    text = notice.content.decode()
    assert 'Subject: Held for approval: your message "Contact report"' in text
    assert f'Your message "Contact report" to {CONTACT}, sent at ' in text
    assert f"(reference {qid})" in text
    assert "Next time: sharing without consent always waits for a line manager." in text
    assert MANAGER in text and "consent refused" in text
    for secret in ("Risk of harm", "Hello."):  # the reason tag and the body
        assert secret not in text
    assert "held for approval (consent refused)" in reply
    [held] = holds.pending()
    assert (held.queue_id, held.staff, held.managers, held.needs_note) == (
        qid,
        STAFF,
        (MANAGER,),
        True,
    )
    assert gw.gateway.spool.rows()[0].state == "held"
    db = gw.settings.storage.database
    for path in (db, db.with_name(db.name + "-wal")):  # personal data at rest is sealed
        for plain in (b"consent refused", b"Risk of harm", b"Contact report"):
            assert plain not in path.read_bytes(), (path, plain)

    # The wrong people cannot decide; a note is required (consent refused).
    for actor, why in (
        (STAFF, "their own message"),
        (OTHER_MANAGER, "is not a line manager of"),
        (LONER, "is not a line manager of"),
    ):
        with pytest.raises(HoldError, match=why):
            holds.approve(qid, actor, "fine")
    with pytest.raises(HoldError, match="needs a note"):
        holds.approve(qid, MANAGER, "  ")
    holds.approve(qid, MANAGER, "Discussed: court order in place")
    gw.gateway.worker.wake()

    await until(lambda: arrived_for(upstream.arrived, CONTACT))
    await asyncio.sleep(0.3)
    [sent] = arrived_for(upstream.arrived, CONTACT)
    assert sent.content.count(NOTICE_START) == 1
    assert message_from_bytes(sent.content, policy=policy.default)["Subject"] == "Contact report"
    assert holds.pending() == []

    await until(lambda: record_of(gw, qid).status == "delivered")
    record = record_of(gw, qid)
    steps = [(s["action"], s["by"], s["note"]) for s in record.approval_steps]
    assert steps == [("held", "", ""), ("approved", MANAGER, "Discussed: court order in place")]
    assert record.approval == "approved"
    assert [f.kind for f in record.followups] == ["hold", "hold", "outcome"]
    assert record.followups[0].data["reasons"] == ["consent refused"]


async def test_refused_message_never_leaves_and_sender_gets_the_note(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    qid = queue_id(await _send(gw, STAFF, "[consent:not-sought] [reason:urgent] Report"))
    with pytest.raises(HoldError, match="needs a note"):
        gw.gateway.holds.refuse(qid, MANAGER, "")
    [row] = gw.gateway.store.query("SELECT blob FROM queue WHERE id = ?", (qid,))
    sealed = bytes(row["blob"])[-64:]  # ciphertext and tag of the held message
    gw.gateway.holds.refuse(qid, MANAGER, "Seek consent first")
    # Shredded: no copy of its ciphertext left in the database file or its log.
    db = gw.settings.storage.database
    for path in (db, db.with_name(db.name + "-wal")):
        assert not path.exists() or sealed not in path.read_bytes(), path
    gw.gateway.worker.wake()
    await until(lambda: len(arrived_for(upstream.arrived, STAFF)) == 2)
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []
    # Delivered concurrently, the held notice and the refusal may arrive in either order.
    [refusal] = notices(upstream.arrived, STAFF, "Not sent:")
    assert f"your message {qid} was refused" in refusal
    assert "Seek consent first" in refusal and MANAGER in refusal
    assert [r.queue_id for r in gw.gateway.spool.rows()] == []  # gone from the spool
    record = record_of(gw, qid)
    assert record.approval == "refused"
    assert record.approval_steps[-1]["note"] == "Seek consent first"
    with pytest.raises(HoldError, match="no message"):
        gw.gateway.holds.approve(qid, MANAGER, "changed my mind")


async def test_sender_without_manager_is_released_only_by_an_admin(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    qid = queue_id(await _send(gw, LONER, "[safeguarding] [consent:obtained] Concern"))
    holds = gw.gateway.holds
    [held] = holds.pending()
    assert held.admin_only and held.reasons == ("flagged safeguarding",)
    assert not held.needs_note  # consent obtained
    notice = await _until_notice(upstream, LONER)
    assert "you have no line manager configured" in notice
    for manager in (MANAGER, OTHER_MANAGER):
        with pytest.raises(HoldError, match="no line manager configured: only an admin"):
            holds.approve(qid, manager)
    holds.approve(qid, ADMIN)
    gw.gateway.worker.wake()
    await until(lambda: arrived_for(upstream.arrived, CONTACT))
    assert record_of(gw, qid).approval_steps[-1]["by"] == ADMIN


async def _until_notice(upstream: Upstream, login: str) -> str:
    await until(lambda: arrived_for(upstream.arrived, login))
    return arrived_for(upstream.arrived, login)[0].content.decode()


async def test_expiry_refuses_never_delivers_and_tells_sender_and_manager(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    qid = queue_id(await _send(gw, STAFF, "Report without any tag"))
    holds = gw.gateway.holds
    [held] = holds.pending()
    assert held.reasons == ("consent not recorded",)
    assert held.expires_at - held.held_at == 7 * 86400  # the default
    assert holds.expire_due(now=held.expires_at - 1) == []
    assert holds.expire_due(now=held.expires_at) == [qid]
    with pytest.raises(HoldError, match="no message"):
        holds.approve(qid, MANAGER, "too late")
    gw.gateway.worker.wake()
    await until(lambda: notices(upstream.arrived, MANAGER, "Not sent:"))
    await until(lambda: len(arrived_for(upstream.arrived, STAFF)) == 2)
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []
    [expiry] = notices(upstream.arrived, MANAGER, "Not sent:")
    assert f"held message {qid} expired" in expiry
    assert record_of(gw, qid).approval == "expired"
    assert gw.gateway.spool.rows() == []


async def test_approval_after_expiry_time_is_refused_even_before_the_sweep(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    gw = await _gateway(start_gateway, upstream)
    qid = queue_id(await _send(gw, STAFF, "[consent:obtained] [safeguarding] Note"))
    holds = gw.gateway.holds
    [held] = holds.pending()
    holds.clock = lambda: held.expires_at + 1
    with pytest.raises(HoldError, match="has expired"):
        holds.approve(qid, MANAGER, "ok")
    assert holds.get(qid) is not None  # still held until the sweep refuses it


async def test_withdraw_only_by_the_sender_and_reminders_go_to_managers(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    first = queue_id(await _send(gw, STAFF, "[consent:refused] [reason:r] One"))
    second = queue_id(await _send(gw, LONER, "[consent:refused] [reason:r] Two"))
    holds = gw.gateway.holds
    [one, two] = holds.pending()
    assert holds.remind(now=one.held_at + 3600) == 0  # not a day yet
    assert holds.remind(now=two.held_at + 86400) == 2  # the manager, and the admin for lee
    assert holds.remind(now=two.held_at + 86400 + 3600) == 0  # once a day
    with pytest.raises(HoldError, match="only the sender"):
        holds.withdraw(first, MANAGER)
    holds.withdraw(first, STAFF)
    assert [h.queue_id for h in holds.pending()] == [second]
    gw.gateway.worker.wake()
    await until(
        lambda: (
            notices(upstream.arrived, MANAGER, "Reminder:")
            and notices(upstream.arrived, ADMIN, "Reminder:")
        )
    )
    [reminder] = notices(upstream.arrived, ADMIN, "Reminder:")
    assert second in reminder and "admins only" in reminder and first not in reminder
    [reminder] = notices(upstream.arrived, MANAGER, "Reminder:")
    assert first in reminder
    assert record_of(gw, first).approval == "withdrawn"


async def test_details_show_what_the_approver_needs_and_queue_delete_cannot_bypass(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    msg = message(STAFF, [CONTACT], subject="[consent:not-sought] [reason:Court] [family:F-7] Plan")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="plan.pdf")
    errors, reply = await gw.send(STAFF, [CONTACT], msg)
    assert errors == {} and "held for approval" in reply
    holds = gw.gateway.holds
    [held] = holds.pending()
    d = holds.details(held)
    assert (d.subject, d.attachments, d.consent, d.reason, d.family, d.mail_from) == (
        "Plan",
        ["plan.pdf"],
        "not-sought",
        "Court",
        "F-7",
        STAFF,
    )
    assert [r["address"] for r in d.recipients] == [CONTACT]
    assert not gw.gateway.spool.delete(held.queue_id)  # only a decision removes it
    assert holds.get(held.queue_id) is not None


async def test_an_admins_held_message_waits_for_another_admin_without_a_gap_warning(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    """Admins have no line manager by design: their notices say "another admin", and
    speak of no missing line manager."""
    gw = await _gateway(start_gateway, upstream)
    second_admin = "ed@c4f.example"
    gw.add_staff(second_admin, role="admin")
    qid = queue_id(await _send(gw, ADMIN, "[consent:refused] [reason:r] Mine"))
    notice = await _until_notice(upstream, ADMIN)
    assert "another admin" in notice and "no line manager" not in notice
    holds = gw.gateway.holds
    [held] = holds.pending()
    assert holds.remind(now=held.held_at + 86400) == 1  # the other admin only
    gw.gateway.worker.wake()
    await until(lambda: notices(upstream.arrived, second_admin, "Reminder:"))
    [reminder] = notices(upstream.arrived, second_admin, "Reminder:")
    assert qid in reminder and "admins only" not in reminder
    assert "no line manager" not in reminder
