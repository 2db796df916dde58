"""A reply keeps its conversation's disclosure details (issue: the approval loop).

The gateway strips the tags from what it relays, so an agency's answer carries none, and
a staff member's reply to it used to arrive with no consent status: held, one manager
decision per message of every conversation. Now a reply whose References name a message
the centre relayed, to the organisations that message went to, inherits its consent
status, reason, family and nature (an explicit tag still wins) and the register says so;
a reply to another organisation inherits nothing. Real SMTP, a running gateway with the
full policy chain, a real upstream, the register's own records.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import StartGateway
from support.contacts import approved
from support.delivery import until
from support.harness import RunningGateway, message
from support.held import queue_id, record_of
from support.upstream import Upstream

from gateway.cli import main
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_sealed import keyring_for
from gateway.register.client_copy import withheld

ALICE = "alice@c4f.example"
BEN = "ben@c4f.example"  # a colleague: the centre's replies, whoever sends them
MANAGER = "mona@c4f.example"
SMITH = "j.smith@cafcass.example"
BROWN = "m.brown@cafcass.example"  # another person at the same organisation
JONES = "k.jones@otheragency.example"
ORIGINAL_ID = "<report-1042.1@c4f.example>"
AGENCY_ID = "<CAF123.456@mail.cafcass.example>"
CHAIN = ["sender", "fax_route", "contacts", "disclosure", "approval", "disclaimer"]


async def _gateway(
    start_gateway: StartGateway, upstream: Upstream, **disclosure: Any
) -> RunningGateway:
    config = {"pipeline": {"filters": CHAIN}, "filter": {"disclosure": disclosure}}
    gw = await start_gateway(upstream=upstream, config=config)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(ALICE, managers=[MANAGER])
    gw.add_staff(BEN, managers=[MANAGER])
    repo = ContactRepository(gw.gateway.store, keyring=keyring_for(gw.settings))
    for address, name, org in (
        (SMITH, "J Smith", "Cafcass"),
        (BROWN, "M Brown", "Cafcass"),
        (JONES, "K Jones", "Other Agency"),
    ):
        repo.add(approved(address, name, org), "Sam Admin")
    return gw


async def _send(gw: RunningGateway, login: str, to: str, subject: str, **headers: str) -> str:
    errors, reply = await gw.send(login, [to], message(login, [to], subject=subject, **headers))
    assert errors == {}, errors
    return reply


async def _original(
    gw: RunningGateway,
    upstream: Upstream,
    subject: str = "[consent:obtained] [family:F-1042] [nature:contact report] Contact report",
) -> str:
    """The message the replies answer, sent to Smith and relayed; its queue ID."""
    reply = await _send(gw, ALICE, SMITH, subject, Message_ID=ORIGINAL_ID)
    assert "held" not in reply, reply
    await upstream.wait_for(1)
    return queue_id(reply)


REPLY_HEADERS = {"In_Reply_To": AGENCY_ID, "References": f"{ORIGINAL_ID} {AGENCY_ID}"}


async def test_reply_to_the_same_organisation_inherits_and_is_not_held(
    start_gateway: StartGateway, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await _gateway(start_gateway, upstream)
    first = record_of(gw, await _original(gw, upstream))

    # Ben answers the agency's reply, to a colleague of the first recipient: no tags.
    reply = await _send(gw, BEN, BROWN, "Re: Contact report", **REPLY_HEADERS)
    assert "held" not in reply, reply
    qid = queue_id(reply)
    arrived = await upstream.wait_for(2)
    assert arrived[1].rcpt_tos == [BROWN]
    r = record_of(gw, qid)
    assert (r.consent, r.family, r.nature, r.inherited_from) == (
        "obtained",
        "F-1042",
        "contact report",
        first.seq,
    )
    assert r.complete
    capsys.readouterr()
    assert main(["register", "show", str(r.seq), "--config", str(gw.config_path)]) == 0
    shown = capsys.readouterr().out
    assert f"inherited from entry {first.seq}" in shown
    assert "Consent:" in shown and "obtained" in shown


async def test_an_explicit_tag_wins_over_the_thread(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    await _original(gw, upstream)
    reply = await _send(gw, ALICE, SMITH, "Re: Contact report [family:F-2001]", **REPLY_HEADERS)
    r = record_of(gw, queue_id(reply))
    assert (r.consent, r.family) == ("obtained", "F-2001")  # consent inherited, family not


async def test_reply_to_another_organisation_inherits_nothing_and_is_held(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    await _original(gw, upstream)
    reply = await _send(gw, ALICE, JONES, "Re: Contact report", **REPLY_HEADERS)
    assert "held for approval" in reply, reply
    r = record_of(gw, queue_id(reply))
    assert (r.consent, r.family, r.inherited_from) == ("not-recorded", "", 0)
    # What left: the original, and the notices to Alice and her manager; nothing for Jones.
    arrived = await upstream.wait_for(3)
    assert sorted(a.rcpt_tos[0] for a in arrived) == [ALICE, SMITH, MANAGER]
    assert "Next time: add [consent:obtained] to the subject when consent was obtained" in reply


async def test_a_safeguarding_thread_stays_flagged(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    held = await _send(
        gw,
        ALICE,
        SMITH,
        "[consent:obtained] [safeguarding] Concern",
        Message_ID=ORIGINAL_ID,
    )
    assert "held for approval" in held
    await asyncio.to_thread(gw.gateway.holds.approve, queue_id(held), MANAGER)
    gw.gateway.worker.wake()
    await upstream.wait_for(1)
    reply = await _send(gw, ALICE, SMITH, "Re: Concern", **REPLY_HEADERS)
    assert "held for approval" in reply, reply  # safeguarding is held, inherited or not
    r = record_of(gw, queue_id(reply))
    assert (r.safeguarding, r.consent) == (True, "obtained")


async def test_a_third_party_thread_stays_withheld_from_the_client_copy(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    # A reply quotes what it answers: information from a third party stays flagged, so the
    # family's client copy withholds the reply too, unless the reply says otherwise.
    gw = await _gateway(start_gateway, upstream)
    first = await _original(
        gw, upstream, "[consent:obtained] [family:F-1042] [third-party] Father's statement"
    )
    reply = await _send(gw, ALICE, SMITH, "Re: Father's statement", **REPLY_HEADERS)
    r = record_of(gw, queue_id(reply))
    assert (r.third_party, r.inherited_from) == (True, record_of(gw, first).seq)
    assert withheld(r)
    cleared = await _send(gw, ALICE, SMITH, "Re: Times [third-party:no]", **REPLY_HEADERS)
    r = record_of(gw, queue_id(cleared))
    assert r.third_party is False
    assert not withheld(r)


async def test_inheritance_can_be_turned_off(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream, inherit_from_thread=False)
    await _original(gw, upstream)
    reply = await _send(gw, ALICE, SMITH, "Re: Contact report", **REPLY_HEADERS)
    assert "held for approval" in reply, reply
    await until(lambda: record_of(gw, queue_id(reply)).consent == "not-recorded")
