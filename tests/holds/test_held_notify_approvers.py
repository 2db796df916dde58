"""Approvers are told at once, and the admins when nobody decides in time.

A held message used to wait until the daily reminder a day later; a child-protection
disclosure could sit unseen and expire unsent. Through the running gateway (real SMTP,
the approval filter, a real TLS upstream recording what leaves): a [safeguarding] hold
reaches the sender's line manager and the safeguarding leads within seconds, marked
urgent, with a link to the console and nothing of the subject or body; past
``escalate_safeguarding_after_hours`` (2) or ``escalate_after_hours`` (24), still
undecided, the admins are told once.
"""

from __future__ import annotations

import asyncio

from conftest import StartGateway
from support.delivery import until
from support.harness import RunningGateway, message
from support.held import notices, queue_id
from support.upstream import Upstream

STAFF = "alice@c4f.example"
MANAGER = "mona@c4f.example"
LEAD = "sam.lead@c4f.example"  # the centre's safeguarding lead
ADMIN = "ada@c4f.example"
CONTACT = "j.smith@partner.example"
URL = "https://console.c4f.example"
CONFIG = {
    "pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]},
    "filter": {"approval": {"safeguarding_leads": [LEAD]}},
    "web": {"public_url": URL},
}
HOUR = 3600.0


async def _gateway(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(LEAD, role="manager")
    gw.add_staff(ADMIN, role="admin")
    gw.add_staff(STAFF, managers=[MANAGER])
    return gw


async def _hold(gw: RunningGateway, subject: str) -> str:
    msg = message(STAFF, [CONTACT], subject=subject, body="SECRET-BODY about the child\n")
    errors, reply = await gw.send(STAFF, [CONTACT], msg)
    assert errors == {} and "held for approval" in reply, reply
    return queue_id(reply)


async def test_safeguarding_hold_tells_manager_and_lead_at_once_then_admins_once(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    urgent = await _hold(gw, "[consent:obtained] [safeguarding] Concern about F-1042")
    subject = "URGENT (safeguarding): Held for your approval: a message from " + STAFF
    await until(lambda: notices(upstream.arrived, MANAGER, subject))
    await until(lambda: notices(upstream.arrived, LEAD, subject))
    for text in notices(upstream.arrived, MANAGER, subject) + notices(
        upstream.arrived, LEAD, subject
    ):
        assert f"Decide in the review console: {URL}/held/{urgent}" in text
        assert "flagged safeguarding" in text and "It goes to: partner.example" in text
        assert "SECRET-BODY" not in text and "Concern about" not in text
    assert notices(upstream.arrived, ADMIN, "URGENT") == []  # the lead is named: not every admin

    # An ordinary hold: the manager only, not marked urgent.
    plain = await _hold(gw, "[consent:refused] [reason:Risk] Contact notes")
    ordinary = "Held for your approval: a message from " + STAFF
    await until(lambda: notices(upstream.arrived, MANAGER, ordinary))
    assert plain in notices(upstream.arrived, MANAGER, ordinary)[0]
    assert [n for n in notices(upstream.arrived, LEAD, "") if plain in n] == []

    # Escalation: the safeguarding one after 2 hours, the other after 24, each once.
    holds = gw.gateway.holds
    held_at = {h.queue_id: h.held_at for h in holds.pending()}
    assert await asyncio.to_thread(holds.escalate, held_at[urgent] + 2 * HOUR - 1) == 0
    assert await asyncio.to_thread(holds.escalate, held_at[urgent] + 2 * HOUR) == 1
    assert await asyncio.to_thread(holds.escalate, held_at[urgent] + 3 * HOUR) == 0
    gw.gateway.worker.wake()
    late = "URGENT (safeguarding): Still undecided: a held message from " + STAFF
    await until(lambda: notices(upstream.arrived, ADMIN, late))
    [told] = notices(upstream.arrived, ADMIN, late)
    assert f"{URL}/held/{urgent}" in told and "SECRET-BODY" not in told

    await asyncio.to_thread(holds.approve, urgent, MANAGER, "Shared with the police")
    assert await asyncio.to_thread(holds.escalate, held_at[plain] + 24 * HOUR) == 1
    assert await asyncio.to_thread(holds.escalate, held_at[plain] + 48 * HOUR) == 0
    gw.gateway.worker.wake()
    await until(lambda: notices(upstream.arrived, ADMIN, "Still undecided"))
    assert len(notices(upstream.arrived, ADMIN, "Still undecided")) == 1
    assert len(notices(upstream.arrived, ADMIN, "URGENT")) == 1
