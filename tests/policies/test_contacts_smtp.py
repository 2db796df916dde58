"""Recipient policy over SMTP, through a running gateway and a recording upstream.

The labelled table of ``test_contacts_table.py`` again, on the wire (REL-2, REL-3, REL-4):
every refused address gets its reply code and hint; every accepted address arrives at the
upstream byte-equal to the address that was compared. Then all-or-nothing: one bad
recipient out of three and nothing reaches the upstream.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from conftest import StartGateway
from support.harness import PASSWORD, RunningGateway
from support.rawsmtp import RawSMTP, authenticated
from support.upstream import Upstream
from test_contacts_table import CASES, STAFF, Case, check_reply, sample_contacts

from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_sealed import keyring_for

CONFIG = {
    "pipeline": {"filters": ["sender", "fax_route", "contacts"]},
    "filter": {"contacts": {"hint_limit_per_day": 1000}},
}


async def _gateway(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(STAFF)
    # Added while the gateway runs: changes apply without a restart.
    sample_contacts(gw.gateway.store, datetime.now(UTC).date())
    return gw


async def _session(gw: RunningGateway) -> RawSMTP:
    c = await authenticated(gw.port, gw.client_tls(), STAFF, PASSWORD)
    assert (await c.cmd(f"MAIL FROM:<{STAFF}>")).startswith("250")
    return c


def _message(to: str) -> bytes:
    return (f"From: {STAFF}\r\nTo: {to}\r\nSubject: visit notes\r\n\r\nNotes.\r\n").encode()


async def _data(c: RawSMTP, content: bytes) -> str:
    reply = await c.cmd("DATA")
    if not reply.startswith("354"):
        return reply
    await c.send(content + b".\r\n")
    return await c.reply()


async def test_table_over_smtp(start_gateway: StartGateway, upstream: Upstream) -> None:
    gw = await _gateway(start_gateway, upstream)
    wrong: list[str] = []
    accepted: list[Case] = []
    for case in CASES:
        if case.smtp is None:
            continue  # not expressible on an SMTP command line (see the case's label)
        sent = case.address if case.smtp == "same" else case.smtp
        c = await _session(gw)
        try:
            reply = await c.cmd(f"RCPT TO:<{sent}>")
            if case.expect == "ok":
                if not reply.startswith("250"):
                    wrong.append(f"{case.label} {sent!r}: {reply}")
                    continue
                data_reply = await _data(c, _message(case.address))
                if data_reply.startswith("250"):
                    accepted.append(case)
                else:
                    wrong.append(f"{case.label} {sent!r}: DATA {data_reply}")
                continue
            code, enhanced, text = int(reply[:3]), reply[4:9], reply[10:]
            try:
                check_reply(
                    replace(case, expect=case.smtp_expect or case.expect), code, enhanced, text
                )
            except AssertionError:
                wrong.append(f"{case.label} {sent!r}: {reply}")
            if not reply.startswith("553") and "[ref R-" not in reply:
                wrong.append(f"{case.label} {sent!r}: no reference in {reply}")
        finally:
            await c.close()
    assert wrong == [], "\n".join(wrong)
    arrived = await upstream.wait_for(len(accepted))
    await asyncio.sleep(0.2)
    # REL-3: what the upstream received is, byte for byte, the address that was compared.
    assert sorted(tuple(a.rcpt_tos) for a in upstream.arrived) == sorted(
        (c.address,) for c in accepted
    )
    assert (
        len(arrived)
        == len(accepted)
        == sum(1 for c in CASES if c.expect == "ok" and c.smtp is not None)
    )


async def test_one_bad_recipient_of_three_sends_nothing(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    good = ["j.whitaker@cafcass.gov.uk", "s.patel@camden.gov.uk"]
    c = await _session(gw)
    assert (await c.cmd(f"RCPT TO:<{good[0]}>")).startswith("250")
    refused = await c.cmd("RCPT TO:<j.whitaker@cafcas.gov.uk>")
    assert refused.startswith("550 5.7.1 ")
    assert "resembles approved contact C-001 (j.wh******@caf****.gov.uk)" in refused
    assert (await c.cmd(f"RCPT TO:<{good[1]}>")).startswith("250")
    reply = await _data(c, _message(", ".join(good)))
    assert reply.startswith("554 5.7.1 1 recipient")
    await c.close()
    # A later, clean message is delivered: by then the refused one would have been too.
    sentinel = await _session(gw)
    assert (await sentinel.cmd(f"RCPT TO:<{good[1]}>")).startswith("250")
    assert (await _data(sentinel, _message(good[1]))).startswith("250")
    await sentinel.close()
    [only] = await upstream.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(upstream.arrived) == 1
    assert only.rcpt_tos == [good[1]]
    assert not any("cafcas.gov.uk" in line for line in upstream.transcript)


async def test_header_only_recipient_is_refused_at_data(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    c = await _session(gw)
    assert (await c.cmd("RCPT TO:<j.whitaker@cafcass.gov.uk>")).startswith("250")
    content = (
        f"From: {STAFF}\r\nTo: j.whitaker@cafcass.gov.uk\r\n"
        "Cc: Jane W <jane.whitaker@gmail.com>\r\nSubject: x\r\n\r\nNotes.\r\n"
    ).encode()
    reply = await _data(c, content)
    await c.close()
    assert reply.startswith("550 5.7.1 To/Cc header: Recipient is not an approved contact")
    assert "resembles approved contact C-001" in reply
    await asyncio.sleep(0.3)
    assert upstream.arrived == []


async def test_contact_added_while_running_applies_to_next_transaction(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    c = await _session(gw)
    assert (await c.cmd("RCPT TO:<new.person@agency.example>")).startswith("550 5.7.1")
    await c.close()
    today = datetime.now(UTC).date()
    ContactRepository(gw.gateway.store, keyring=keyring_for(gw.settings)).add(
        Contact(
            0,
            "address",
            "new.person@agency.example",
            "New Person",
            "Agency",
            "",
            "Sam Admin",
            today.isoformat(),
            "phoned back",
            today.replace(year=today.year + 1).isoformat(),
        ),
        "Sam Admin",
    )
    c = await _session(gw)
    assert (await c.cmd("RCPT TO:<new.person@agency.example>")).startswith("250")
    assert (await _data(c, _message("new.person@agency.example"))).startswith("250")
    await c.close()
    [arrived] = await upstream.wait_for(1)
    assert arrived.rcpt_tos == ["new.person@agency.example"]
