"""filters.contacts as plain calls: expiry, whole domains, headers, hints and their limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from support.contacts import contacts_keyring, settings_for

from filters import contacts as contacts_filter
from filters.contacts import ContactsFilter
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.envelope import Session, Transaction
from gateway.errors import ConfigError, Refused
from gateway.pipeline import FilterContext
from gateway.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "gateway.db")


def add(
    store: Store,
    address: str,
    kind: str = "address",
    due: str = "2027-03-01",
    name: str = "Jane Whitaker",
    requires_approval: bool = False,
) -> Contact:
    repo = ContactRepository(
        store, lambda: datetime(2026, 3, 1, tzinfo=UTC), keyring=contacts_keyring(store)
    )
    return repo.add(
        Contact(
            0,
            kind,
            address,
            name,
            "Cafcass",
            "",
            "Sam",
            "2026-03-01",  # type: ignore[arg-type]
            "phoned back",
            due,
            requires_approval=requires_approval,
        ),
        "Sam",
    )


def make(store: Store, clock: Clock, **options: object) -> ContactsFilter:
    f = contacts_filter.create(dict(options), FilterContext(settings_for(store), store))
    f.repo.clock = clock
    return f


def tx(user: str = "alice@c4f.example") -> Transaction:
    return Transaction(Session("127.0.0.1", "client.test", user, True), "Q1")


async def refused(f: ContactsFilter, t: Transaction, address: str) -> Refused:
    with pytest.raises(Refused) as r:
        await f.on_rcpt(t, address)
    return r.value


async def test_expired_approval_has_its_own_message(store: Store, clock: Clock) -> None:
    add(store, "j.whitaker@cafcass.gov.uk", due="2026-03-03")
    f = make(store, clock)
    await f.on_rcpt(tx(), "j.whitaker@cafcass.gov.uk")  # the day before: still approved
    clock.now = datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC)
    t = tx()
    r = await refused(f, t, "j.whitaker@cafcass.gov.uk")
    assert r.reply().startswith(
        "550 5.7.1 Approval of contact C-001 expired on 2026-03-03; ask an admin to review it"
    )
    assert "resembles" not in r.text
    assert t.annotations["recipients"]["j.whitaker@cafcass.gov.uk"] == {
        "refused": "expired",
        "reference": r.reference,
        "code": 550,
        "contact_id": "C-001",
    }


async def test_whole_domain_entry_covers_that_domain_only(store: Store, clock: Clock) -> None:
    add(store, "family-court.org.uk", kind="domain", name="")
    f = make(store, clock)
    t = tx()
    await f.on_rcpt(t, "Any.One@Family-Court.org.uk")
    assert t.annotations["recipients"]["Any.One@Family-Court.org.uk"] == {
        "contact_id": "C-001",
        "organisation": "Cafcass",
        "display_name": "",
        "match": "domain",
        "header_only": False,
    }
    await refused(f, tx(), "clerk@leeds.family-court.org.uk")  # not sub-domains
    await refused(f, tx(), "clerk@family-court.org.uk.example")


async def test_address_entry_wins_over_domain_entry(store: Store, clock: Clock) -> None:
    add(store, "cafcass.gov.uk", kind="domain", name="")
    add(store, "j.whitaker@cafcass.gov.uk", due="2026-03-02")  # lapsed today
    r = await refused(make(store, clock), tx(), "j.whitaker@cafcass.gov.uk")
    assert "C-002 expired" in r.text


async def test_internal_domains_need_no_entry(store: Store, clock: Clock) -> None:
    t = tx()
    await make(store, clock).on_rcpt(t, "Bob@C4F.example")
    assert t.annotations["recipients"]["Bob@C4F.example"] == {
        "internal": True,
        "header_only": False,
    }


async def test_header_only_recipients_are_checked(store: Store, clock: Clock) -> None:
    add(store, "j.whitaker@cafcass.gov.uk")
    f = make(store, clock)
    t = tx()
    await f.on_rcpt(t, "j.whitaker@cafcass.gov.uk")
    t.rcpt_tos.append("j.whitaker@cafcass.gov.uk")
    good = (
        b"From: alice@c4f.example\r\nTo: Jane <j.whitaker@cafcass.gov.uk>\r\n"
        b"Cc: bob@c4f.example\r\nSubject: x\r\n\r\nbody\r\n"
    )
    assert await f.on_data(t, good) == good
    assert t.annotations["recipients"]["bob@c4f.example"]["header_only"] is True
    assert t.annotations["recipients"]["j.whitaker@cafcass.gov.uk"]["header_only"] is False
    bad = good.replace(b"Cc: bob@c4f.example", b"Cc: Jane <jane.whitaker@gmail.com>")
    with pytest.raises(Refused) as r:
        await f.on_data(t, bad)
    assert r.value.reply().startswith(
        "550 5.7.1 To/Cc header: Recipient is not an approved contact; check the address, "
        "or ask an admin to approve it; resembles approved contact C-001 "
        "(j.wh******@caf****.gov.uk) [ref R-"
    )
    assert t.annotations["recipients"]["jane.whitaker@gmail.com"]["refused"] == "not_approved"
    resent = good.replace(b"Subject: x", b"Resent-To: x@evil.example\r\nSubject: x")
    with pytest.raises(Refused):
        await f.on_data(tx(), resent)


async def test_ambiguous_header_is_refused(store: Store, clock: Clock) -> None:
    content = b"From: alice@c4f.example\r\nTo: a@b.example <c@d.example>\r\n\r\nbody\r\n"
    with pytest.raises(Refused) as r:
        await make(store, clock).on_data(tx(), content)
    assert r.value.reply().startswith("550 5.7.1 To: header cannot be read unambiguously")


async def test_hint_rate_limit_then_generic_reply_and_flag(store: Store, clock: Clock) -> None:
    add(store, "j.whitaker@cafcass.gov.uk")
    f = make(store, clock, hint_limit_per_day=2)
    hint = "resembles approved contact C-001 (j.wh******@caf****.gov.uk)"
    with structlog.testing.capture_logs() as logs:
        replies = [(await refused(f, tx(), "j.whitaker@cafcas.gov.uk")).text for _ in range(2)]
        t = tx()
        third = await refused(f, t, "j.whitaker@cafcas.gov.uk")
    assert all(r.endswith(hint) for r in replies)
    assert (
        third.text == "Recipient is not an approved contact; check the address, or ask an "
        "admin to approve it"
    )
    record = t.annotations["recipients"]["j.whitaker@cafcas.gov.uk"]
    assert record["flag"] == "hint_limit_reached" and record["resembles"] == "C-001"
    flagged = [e for e in logs if e["event"] == "lookalike_hint_limit_reached"]
    assert flagged == [
        {
            "event": "lookalike_hint_limit_reached",
            "staff": "alice@c4f.example",
            "queue_id": "Q1",
            "reference": third.reference,
            "limit": 2,
            "log_level": "warning",
        }
    ]
    # Contact data never reaches the logs in full.
    assert not any("j.whitaker@" in json.dumps(e, default=str) for e in logs)
    assert (await refused(f, tx("bob@c4f.example"), "j.whitaker@cafcas.gov.uk")).text.endswith(
        hint
    )  # per user
    clock.now = datetime(2026, 3, 3, 8, tzinfo=UTC)
    assert (await refused(f, tx(), "j.whitaker@cafcas.gov.uk")).text.endswith(hint)  # per day


async def test_no_hint_without_authentication_or_when_disabled(store: Store, clock: Clock) -> None:
    add(store, "j.whitaker@cafcass.gov.uk")
    r = await refused(make(store, clock), tx(user=""), "j.whitaker@cafcas.gov.uk")
    assert "resembles" not in r.text
    r = await refused(make(store, clock, hint_limit_per_day=0), tx(), "j.whitaker@cafcas.gov.uk")
    assert "resembles" not in r.text


async def test_annotations_are_json_serialisable(store: Store, clock: Clock) -> None:
    add(store, "j.whitaker@cafcass.gov.uk")
    f = make(store, clock)
    t = tx()
    await f.on_rcpt(t, "j.whitaker@cafcass.gov.uk")
    await f.on_rcpt(t, "bob@c4f.example")
    with pytest.raises(Refused):
        await f.on_rcpt(t, "whitaker.j@cafcass.gov.uk")
    assert json.loads(json.dumps(t.annotations)) == t.annotations
    assert set(t.annotations["recipients"]) == {
        "j.whitaker@cafcass.gov.uk",
        "bob@c4f.example",
        "whitaker.j@cafcass.gov.uk",
    }


async def test_removal_applies_to_the_next_transaction(store: Store, clock: Clock) -> None:
    c = add(store, "j.whitaker@cafcass.gov.uk")
    f = make(store, clock)
    await f.on_rcpt(tx(), "j.whitaker@cafcass.gov.uk")
    ContactRepository(store, keyring=contacts_keyring(store)).remove(c.id, "Kim")
    await refused(f, tx(), "j.whitaker@cafcass.gov.uk")


def test_options_are_checked(store: Store) -> None:
    ctx = FilterContext(settings_for(store), store)
    with pytest.raises(ConfigError, match="unknown option"):
        contacts_filter.create({"hints": True}, ctx)
    for bad in (-1, True, "5"):
        with pytest.raises(ConfigError, match="hint_limit_per_day"):
            contacts_filter.create({"hint_limit_per_day": bad}, ctx)


async def test_requires_approval_is_carried_for_the_approval_filter(
    store: Store, clock: Clock
) -> None:
    add(store, "duty@council.example", requires_approval=True)
    add(store, "family-court.org.uk", kind="domain", name="", requires_approval=True)
    add(store, "j.whitaker@cafcass.gov.uk")
    f = make(store, clock)
    t = tx()
    for address in (
        "duty@council.example",
        "Clerk@Family-Court.org.uk",
        "j.whitaker@cafcass.gov.uk",
    ):
        await f.on_rcpt(t, address)
        t.rcpt_tos.append(address)
    recipients = t.annotations["recipients"]
    assert recipients["duty@council.example"] == {
        "contact_id": "C-001",
        "organisation": "Cafcass",
        "display_name": "Jane Whitaker",
        "match": "address",
        "header_only": False,
        "requires_approval": True,
    }
    assert recipients["Clerk@Family-Court.org.uk"]["requires_approval"] is True  # domain entry
    assert "requires_approval" not in recipients["j.whitaker@cafcass.gov.uk"]
    assert [a for a, r in recipients.items() if r.get("requires_approval")] == [
        "duty@council.example",
        "Clerk@Family-Court.org.uk",
    ]
    content = (
        b"From: alice@c4f.example\r\nTo: j.whitaker@cafcass.gov.uk\r\n"
        b"Cc: Duty <DUTY@council.example>\r\nSubject: x\r\n\r\nbody\r\n"
    )
    cc_only = tx()
    await f.on_rcpt(cc_only, "j.whitaker@cafcass.gov.uk")
    cc_only.rcpt_tos.append("j.whitaker@cafcass.gov.uk")
    await f.on_data(cc_only, content)  # a Cc-only copy to a marked contact is marked too
    assert cc_only.annotations["recipients"]["DUTY@council.example"] == {
        "contact_id": "C-001",
        "organisation": "Cafcass",
        "display_name": "Jane Whitaker",
        "match": "address",
        "header_only": True,
        "requires_approval": True,
    }
    assert json.loads(json.dumps(t.annotations)) == t.annotations


async def test_marking_a_contact_applies_to_the_next_transaction(
    store: Store, clock: Clock
) -> None:
    c = add(store, "j.whitaker@cafcass.gov.uk")
    f = make(store, clock)
    first = tx()
    await f.on_rcpt(first, "j.whitaker@cafcass.gov.uk")
    ContactRepository(store, keyring=contacts_keyring(store)).update(
        c.id, "Kim", "requires-approval", requires_approval=True
    )
    second = tx()
    await f.on_rcpt(second, "j.whitaker@cafcass.gov.uk")
    assert "requires_approval" not in first.annotations["recipients"]["j.whitaker@cafcass.gov.uk"]
    assert second.annotations["recipients"]["j.whitaker@cafcass.gov.uk"]["requires_approval"]
    ContactRepository(store, keyring=contacts_keyring(store)).update(
        c.id, "Kim", "requires-approval", requires_approval=False
    )
    third = tx()
    await f.on_rcpt(third, "j.whitaker@cafcass.gov.uk")
    assert "requires_approval" not in third.annotations["recipients"]["j.whitaker@cafcass.gov.uk"]


async def test_a_marked_contact_is_still_refused_when_lapsed(store: Store, clock: Clock) -> None:
    add(store, "duty@council.example", due="2026-03-02", requires_approval=True)
    t = tx()
    r = await refused(make(store, clock), t, "duty@council.example")
    assert "C-001 expired" in r.text  # refused outright, never held for approval
    assert t.annotations["recipients"]["duty@council.example"]["refused"] == "expired"
    assert "requires_approval" not in t.annotations["recipients"]["duty@council.example"]
