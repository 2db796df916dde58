"""REL-5: plus-addressing and case are one mailbox for every contact rule.

Microsoft 365 and Google deliver ``local+tag@domain`` to ``local@domain``, and any case of
the local part to the same mailbox. So the rules of ``person@domain`` (requires approval,
expiry, fax attestation, the DNS fax flag, lookalike hints) must hold for
``PERSON+anything@domain`` too, even where a whole-domain entry would otherwise let the
sub-address through; a sub-address that has an entry of its own is judged by that entry.

The same table runs as plain filter calls (``fax_route``, ``contacts``, ``approval``) and
over SMTP through a running gateway with a recording upstream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import StartGateway
from support.contacts import contacts_keyring, settings_for
from support.delivery import until
from support.harness import PASSWORD, RunningGateway
from support.rawsmtp import RawSMTP, authenticated
from support.upstream import Upstream

from filters import approval, fax_route
from filters import contacts as contacts_filter
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.envelope import Session, Transaction
from gateway.errors import Refused
from gateway.pipeline import FilterContext, Pipeline
from gateway.store import Store

STAFF = "alice@c4f.example"
TODAY = date(2026, 3, 2)
HELD = "held for approval"


def subaddress_contacts(store: Store, today: date) -> None:
    """C-001 ... C-008, in this order."""
    repo = ContactRepository(
        store,
        lambda: datetime(today.year, today.month, today.day, tzinfo=UTC),
        keyring=contacts_keyring(store),
    )
    approved = (today - timedelta(days=30)).isoformat()
    due = (today + timedelta(days=300)).isoformat()

    def add(address: str, **kw: object) -> Contact:
        values: dict[str, object] = {
            "id": 0,
            "kind": "address",
            "address": address,
            "display_name": "Named Person",
            "organisation": "Agency",
            "role": "",
            "approved_by": "Sam Admin",
            "approved_on": approved,
            "verified_how": "phoned back",
            "review_due": due,
        }
        values.update(kw)
        return repo.add(Contact(**values), "Sam Admin")  # type: ignore[arg-type]

    add("agency.example", kind="domain", display_name="")  # C-001: the whole domain
    add("person@agency.example", requires_approval=True)  # C-002
    add(  # C-003: lapsed
        "old@agency.example",
        approved_on=(today - timedelta(days=400)).isoformat(),
        review_due=(today - timedelta(days=35)).isoformat(),
    )
    add("person+court@agency.example")  # C-004: a sub-address with its own entry
    add("old+kept@agency.example")  # C-005: its own entry, still valid
    add(  # C-006: a phone-number mailbox an admin attested as not a fax route
        "02071234567@agency.example", not_fax_by="Sam Admin", not_fax_on=approved
    )
    flagged = add("records@agency.example")  # C-007: DNS says its mail goes to a fax service
    repo.update(flagged.id, "mx-sweep", "mx-sweep", mx_flag="MX mx.efaxsend.com is a fax")
    add(  # C-008: no whole-domain entry here
        "lapsed@barnet.gov.uk",
        display_name="Lapsed Contact",
        approved_on=(today - timedelta(days=400)).isoformat(),
        review_due=(today - timedelta(days=35)).isoformat(),
    )
    add("j.whitaker@cafcass.gov.uk", display_name="Jane Whitaker")  # C-009


@dataclass(frozen=True)
class Case:
    address: str
    expect: str  # "ok", "held", "refused"
    contact: str  # the entry that judged it (refused: the one named in the reply)
    reason: str = ""  # refused: "expired", "fax_mx", "fax_route", "not_approved"


CASES = [
    # Requires approval: held under any tag and any case.
    Case("person@agency.example", "held", "C-002"),
    Case("person+x@agency.example", "held", "C-002"),
    Case("PERSON+y@agency.example", "held", "C-002"),
    Case("Person+Y@AGENCY.EXAMPLE", "held", "C-002"),
    # Expired: refused under any tag, whole domain or not.
    Case("old@agency.example", "refused", "C-003", "expired"),
    Case("old+x@agency.example", "refused", "C-003", "expired"),
    Case("OLD+x@agency.example", "refused", "C-003", "expired"),
    Case("lapsed+x@barnet.gov.uk", "refused", "C-008", "expired"),
    # DNS fax flag on the mailbox: refused under any tag.
    Case("records+x@agency.example", "refused", "C-007", "fax_mx"),
    # Fax attestation of the mailbox covers its sub-addresses.
    Case("02071234567+x@agency.example", "ok", "C-006"),
    # A sub-address with an entry of its own is judged by that entry.
    Case("person+court@agency.example", "ok", "C-004"),
    Case("PERSON+COURT@agency.example", "ok", "C-004"),
    Case("old+kept@agency.example", "ok", "C-005"),
    # No entry for the mailbox: the whole-domain entry decides.
    Case("anyone+x@agency.example", "ok", "C-001"),
    # No whole-domain entry: a sub-address is not approved by its mailbox's entry; the
    # hint names the mailbox, typo or not.
    Case("j.whitaker+x@cafcass.gov.uk", "refused", "C-009", "not_approved"),
    Case("j.whitacker+x@cafcass.gov.uk", "refused", "C-009", "not_approved"),
    Case("whitaker.j+x@cafcass.gov.uk", "refused", "C-009", "not_approved"),
]
IDS = [f"{c.expect}: {c.address}" for c in CASES]


def make_pipeline(store: Store, today: date) -> Pipeline:
    ctx = FilterContext(settings=settings_for(store), store=store)
    contacts = contacts_filter.create({"hint_limit_per_day": 1000}, ctx)
    fixed = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    contacts.repo.clock = lambda: fixed
    # Consent holds off: only the contact rule decides here.
    holds = approval.ApprovalFilter(approval.ApprovalPolicy(hold_consent=()), ["c4f.example"])
    return Pipeline([fax_route.create({}, ctx), contacts, holds])


def check_refusal(case: Case, code: int, enhanced: str, text: str) -> None:
    assert (code, enhanced) == (550, "5.7.1"), (case, text)
    if case.reason == "expired":
        assert f"Approval of contact {case.contact} expired on" in text, (case, text)
    elif case.reason == "fax_mx":
        assert f"Mail for contact {case.contact} is handled by a fax service" in text, text
    else:
        assert "Recipient is not an approved contact" in text, (case, text)
        assert f"resembles approved contact {case.contact} (" in text, (case, text)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_rel5_one_mailbox_as_plain_filter_calls(tmp_path: Path, case: Case) -> None:
    store = Store(tmp_path / "gateway.db")
    subaddress_contacts(store, TODAY)
    pipeline = make_pipeline(store, TODAY)
    tx = Transaction(Session("127.0.0.1", "client.test", STAFF, True), "Q1")
    if case.expect == "refused":
        with pytest.raises(Refused) as refused:
            await pipeline.on_rcpt(tx, case.address)
        r = refused.value
        check_refusal(case, r.code, r.enhanced, r.text)
        assert tx.annotations["recipients"][case.address]["refused"] == case.reason
        return
    await pipeline.on_rcpt(tx, case.address)
    tx.rcpt_tos.append(case.address)
    content = f"From: {STAFF}\r\nTo: {case.address}\r\nSubject: s\r\n\r\nbody\r\n".encode()
    await pipeline.on_data(tx, content)
    assert tx.annotations["recipients"][case.address]["contact_id"] == case.contact
    if case.expect == "held":
        assert tx.annotations["hold"]["reasons"] == [f"contact {case.contact} requires approval"]
    else:
        assert "hold" not in tx.annotations


CONFIG = {
    "pipeline": {"filters": ["sender", "fax_route", "contacts", "approval"]},
    "filter": {"contacts": {"hint_limit_per_day": 1000}, "approval": {"hold_consent": []}},
}


async def _send(gw: RunningGateway, address: str) -> tuple[str, str]:
    """(RCPT reply, DATA reply or "") for one message to ``address``."""
    c: RawSMTP = await authenticated(gw.port, gw.client_tls(), STAFF, PASSWORD)
    try:
        assert (await c.cmd(f"MAIL FROM:<{STAFF}>")).startswith("250")
        rcpt = await c.cmd(f"RCPT TO:<{address}>")
        if not rcpt.startswith("250"):
            return rcpt, ""
        assert (await c.cmd("DATA")).startswith("354")
        await c.send(f"From: {STAFF}\r\nTo: {address}\r\nSubject: s\r\n\r\nbody\r\n.\r\n".encode())
        return rcpt, await c.reply()
    finally:
        await c.close()


async def test_rel5_one_mailbox_over_smtp(start_gateway: StartGateway, upstream: Upstream) -> None:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(STAFF)
    subaddress_contacts(gw.gateway.store, datetime.now(UTC).date())
    wrong: list[str] = []
    for case in CASES:
        rcpt, data = await _send(gw, case.address)
        if case.expect == "refused":
            try:
                check_refusal(case, int(rcpt[:3]), rcpt[4:9], rcpt[10:])
            except AssertionError:
                wrong.append(f"{case.address}: {rcpt}")
        elif case.expect == "held":
            if not (data.startswith("250 2.0.0 Queued as ") and HELD in data):
                wrong.append(f"{case.address}: {rcpt} / {data}")
        elif not data.startswith("250 2.0.0 Queued as ") or HELD in data:
            wrong.append(f"{case.address}: {rcpt} / {data}")
    assert wrong == [], "\n".join(wrong)
    sent = sorted(c.address for c in CASES if c.expect == "ok")

    def relayed() -> list[str]:  # what the staff member sent (held notices come from us)
        return sorted(a for m in upstream.arrived if m.mail_from == STAFF for a in m.rcpt_tos)

    await until(lambda: len(relayed()) >= len(sent))
    await asyncio.sleep(0.3)  # a held message would have been delivered by now
    assert relayed() == sent
