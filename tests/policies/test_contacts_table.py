"""The labelled-address table (REL-2, REL-3, REL-4), run as plain filter calls.

``tests/policies/test_contacts_smtp.py`` runs the same table over SMTP through a running gateway.
Each case names the address, what must happen, and (for lookalikes) which approved
contact the hint must name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from support.contacts import contacts_keyring, settings_for

from filters import contacts as contacts_filter
from filters import fax_route
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.envelope import Session, Transaction
from gateway.errors import Refused
from gateway.pipeline import FilterContext, Pipeline
from gateway.store import Store

STAFF = "alice@c4f.example"
TODAY = date(2026, 3, 2)


def sample_contacts(store: Store, today: date) -> None:
    """The sample list: C-001 ... C-015, in this order."""
    repo = ContactRepository(
        store,
        lambda: datetime(today.year, today.month, today.day, tzinfo=UTC),
        keyring=contacts_keyring(store),
    )
    approved = today - timedelta(days=30)
    due = today + timedelta(days=300)

    def add(address: str, name: str, org: str, **kw: object) -> Contact:
        values: dict[str, object] = {
            "id": 0,
            "kind": "address",
            "address": address,
            "display_name": name,
            "organisation": org,
            "role": "",
            "approved_by": "Sam Admin",
            "approved_on": approved.isoformat(),
            "verified_how": "phoned back",
            "review_due": due.isoformat(),
        }
        values.update(kw)
        return repo.add(Contact(**values), "Sam Admin")  # type: ignore[arg-type]

    add("j.whitaker@cafcass.gov.uk", "Jane Whitaker", "Cafcass")  # C-001
    add("ok@contact.example", "Olive King", "Contact Org")  # C-002
    add("family-court.org.uk", "", "Family Court", kind="domain")  # C-003
    add("s.patel@camden.gov.uk", "Sanjay Patel", "Camden Council")  # C-004
    add(
        "old.contact@barnet.gov.uk",
        "Old Contact",
        "Barnet",  # C-005: lapsed
        approved_on=(today - timedelta(days=400)).isoformat(),
        review_due=(today - timedelta(days=35)).isoformat(),
    )
    add("records@[192.0.2.10]", "Records system", "Legacy", unusual=True)  # C-006
    add(
        "02071234567@surgery.nhs.uk",
        "GP surgery",
        "Surgery",  # C-007: attested
        not_fax_by="Sam Admin",
        not_fax_on=approved.isoformat(),
    )
    add("team-fax@council.gov.uk", "Fax team", "Council")  # C-008: soft sign, not attested
    add("FAX=+441234567@corp.example", "Corp fax", "Corp")  # C-009: hard fax route
    add("m.jones@nhs.net", "Mary Jones", "NHS")  # C-010
    flagged = add("records@flagged.example", "Records", "Flagged")  # C-011
    repo.update(flagged.id, "mx-sweep", "mx-sweep", mx_flag="MX mx.efaxsend.com is a fax")
    add("ali.fax@nhs.net", "Ali Fax", "NHS")  # C-012
    add("info@fairfax.gov", "Fairfax County", "Fairfax")  # C-013
    add("jo@halifax.co.uk", "Jo Halifax", "Halifax")  # C-014
    add("j.smith@carfax.com", "John Smith", "Carfax")  # C-015


@dataclass(frozen=True)
class Case:
    label: str
    address: str  # what the relay core hands the filter
    expect: str  # "ok" (with the contact or "internal"), "fax", "refused", "syntax"
    contact: str = ""  # ok: the approved entry; refused: the contact the hint names
    reason: str = ""  # the refusal annotation ("not_approved", "unusual_form", ...)
    smtp: str | None = "same"  # address sent over SMTP ("same", another form, None: skip)
    smtp_expect: str = ""  # when the wire gives another result (aiosmtpd re-parses)


CASES = [
    # Approved, exactly or by the rules for case and whole domains.
    Case("approved", "j.whitaker@cafcass.gov.uk", "ok", "C-001"),
    Case("approved, upper case", "J.Whitaker@CAFCASS.GOV.UK", "ok", "C-001"),
    Case("REL-3 approved", "ok@contact.example", "ok", "C-002"),
    Case("REL-3 upper case", "OK@CONTACT.EXAMPLE", "ok", "C-002"),
    Case("whole-domain entry", "anyone@family-court.org.uk", "ok", "C-003"),
    Case("whole-domain entry, case", "Another.Person@FAMILY-COURT.ORG.UK", "ok", "C-003"),
    Case("unusual, approved exactly", "records@[192.0.2.10]", "ok", "C-006"),
    Case(
        "unusual, approved exactly, other case",
        "RECORDS@[192.0.2.10]",
        "refused",
        "",
        "unusual_form",
    ),
    Case("phone-number mailbox, attested", "02071234567@surgery.nhs.uk", "ok", "C-007"),
    Case("Ali Fax is a person", "ali.fax@nhs.net", "ok", "C-012"),
    Case("fairfax is not fax", "info@fairfax.gov", "ok", "C-013"),
    Case("halifax is not fax", "jo@halifax.co.uk", "ok", "C-014"),
    Case("carfax is not fax", "j.smith@carfax.com", "ok", "C-015"),
    Case("internal", "colleague@c4f.example", "ok", "internal"),
    Case("internal, 'fax' in a name", "a.fax@c4f.example", "ok", "internal"),
    Case("approved", "s.patel@camden.gov.uk", "ok", "C-004"),
    Case("approved", "m.jones@nhs.net", "ok", "C-010"),
    # REL-4: fax routes, approved or not, in case, +tag and quoted variants.
    Case("RFC 3192, approved anyway", "FAX=+441234567@corp.example", "fax"),
    Case("RFC 3192, lower case", "fax=+441234567@corp.example", "fax"),
    Case(
        "RFC 3192, quoted, spaces (the relay core refuses spaces first)",
        '"/FAX=+44 20 7946 0000/"@corp.example',
        "fax",
        smtp=None,
    ),
    Case("RFC 3192, quoted with slashes", '"/FAX=+442079460000/"@corp.example', "fax"),
    Case("RFC 3192 with T33S", "/FAX=+442079460000/T33S=6377@corp.example", "fax"),
    Case("VPIM voice", "VOICE=+15551234567@vpim.example", "fax"),
    Case("VPIM AMIS", "AMIS=+15551234567@vpim.example", "fax"),
    Case("IMCEAFAX on an approved domain", "IMCEAFAX-+2B442079460000@cafcass.gov.uk", "fax"),
    Case("X.400 path", "/C=GB/ADMD=BT/S=SMITH/@x400.example", "fax"),
    Case("provider", "02079460000@efaxsend.com", "fax"),
    Case("provider sub-domain", "anything@uk.myfax.com", "fax"),
    Case("provider, upper case", "User@RCFAX.COM", "fax"),
    Case("provider, +tag", "02079460000+tag@srfax.com", "fax"),
    Case("provider, quoted", '"02079460000"@fax.plus', "fax"),
    Case("role mailbox, approved, not attested", "team-fax@council.gov.uk", "fax"),
    Case("phone-number mailbox", "+442079460000@corp.example", "fax"),
    Case("fax label in the domain", "records@fax.cafcass.gov.uk", "fax"),
    Case("dotless domain", "someone@fax", "fax"),
    Case("numeric domain", "4412345@12345.678", "fax"),
    Case("Outlook one-off", "[FAX:Jane@+44 20 7946 0000]", "fax", smtp=None),
    Case("internal fax mailbox", "fax@c4f.example", "fax"),
    Case("approved, but DNS says fax", "records@flagged.example", "refused", "C-011", "fax_mx"),
    Case("lapsed approval", "old.contact@barnet.gov.uk", "refused", "C-005", "expired"),
    # Lookalikes: refused, and the hint names the approved contact.
    Case("domain typo", "j.whitaker@cafcas.gov.uk", "refused", "C-001", "not_approved"),
    Case("other suffix", "j.whitaker@cafcass.org.uk", "refused", "C-001", "not_approved"),
    Case("other suffix (.com)", "j.whitaker@cafcass.com", "refused", "C-001", "not_approved"),
    Case("hyphenated", "j.whitaker@cafcass-gov.uk", "refused", "C-001", "not_approved"),
    Case(
        "embedded", "j.whitaker@cafcass.gov.uk.secure-mail.com", "refused", "C-001", "not_approved"
    ),
    Case("Cyrillic a", "j.whitaker@cаfcass.gov.uk", "refused", "C-001", "unusual_form", smtp=None),
    Case(
        "punycode lookalike", "j.whitaker@xn--cfcass-3nf.gov.uk", "refused", "C-001", "unusual_form"
    ),
    Case("local typo", "j.whitacker@cafcass.gov.uk", "refused", "C-001", "not_approved"),
    Case("reordered", "whitaker.j@cafcass.gov.uk", "refused", "C-001", "not_approved"),
    Case("+tag", "j.whitaker+court@cafcass.gov.uk", "refused", "C-001", "not_approved"),
    Case("name at webmail", "jane.whitaker@gmail.com", "refused", "C-001", "not_approved"),
    Case("name at webmail", "janewhitaker@hotmail.co.uk", "refused", "C-001", "not_approved"),
    Case("domain typo", "s.patel@camdem.gov.uk", "refused", "C-004", "not_approved"),
    Case("name at webmail", "sanjay.patel@outlook.com", "refused", "C-004", "not_approved"),
    Case("local typo", "m.jomes@nhs.net", "refused", "C-010", "not_approved"),
    Case("REL-3 +tag", "ok+x@contact.example", "refused", "C-002", "not_approved"),
    Case("REL-3 punycode", "ok@xn--cntact-wqf.example", "refused", "C-002", "unusual_form"),
    # Not approved, nothing resembles: no hint.
    Case("stranger", "stranger@unrelated.example", "refused", "", "not_approved"),
    Case(
        "same organisation, other person",
        "other.person@cafcass.gov.uk",
        "refused",
        "",
        "not_approved",
    ),
    # REL-3: shapes that make systems disagree about the recipient.
    Case("REL-3 % routing", "ok%evil.example@contact.example", "refused", "", "unusual_form"),
    Case("REL-3 ! path", "evil.example!ok@contact.example", "refused", "", "unusual_form"),
    Case("REL-3 quoted @", '"ok@contact.example"@evil.example', "refused", "", "unusual_form"),
    # aiosmtpd drops these quotes, leaving an invalid address: refused either way.
    Case(
        "quoted double dot",
        '"mary..jones"@legacy.example',
        "refused",
        "",
        "unusual_form",
        smtp_expect="syntax",
    ),
    Case("REL-3 domain literal", "ok@[192.0.2.1]", "refused", "", "unusual_form"),
    Case(
        "REL-3 source route (as aiosmtpd hands it on)",
        "ok@evil.example",
        "refused",
        "",
        "not_approved",
        smtp="@contact.example:ok@evil.example",
    ),
    Case(
        "internal, % routing", "colleague%evil.example@c4f.example", "refused", "", "unusual_form"
    ),
    Case(
        "non-ASCII local part", "bücher@contact.example", "refused", "", "unusual_form", smtp=None
    ),
    Case("REL-3 postmaster", "postmaster", "syntax"),
    Case("REL-3 quoted CR", '"ok\rx"@contact.example', "syntax"),
    Case("empty local part", "@contact.example", "syntax", smtp=None),
    Case("double dot", "j..whitaker@cafcass.gov.uk", "syntax"),
]


def test_table_has_at_least_fifty_labelled_addresses() -> None:
    assert len(CASES) >= 50
    assert {c.expect for c in CASES} == {"ok", "fax", "refused", "syntax"}


def make_pipeline(store: Store, today: date, hint_limit: int = 1000) -> Pipeline:
    ctx = FilterContext(settings=settings_for(store), store=store)
    fax = fax_route.create({}, ctx)
    contacts = contacts_filter.create({"hint_limit_per_day": hint_limit}, ctx)
    fixed = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    contacts.repo.clock = lambda: fixed
    return Pipeline([fax, contacts])


def new_tx(user: str = STAFF) -> Transaction:
    return Transaction(Session(peer="127.0.0.1", helo="client.test", user=user, tls=True), "Q1")


def check_reply(case: Case, code: int, enhanced: str, text: str) -> None:
    """The reply a refused case must get (shared with the SMTP run)."""
    if case.expect == "fax":
        assert (code, enhanced) == (550, "5.7.1"), case
        assert "fax" in text.lower(), case
    elif case.expect == "syntax":
        assert (code, enhanced) == (553, "5.1.3"), case
    else:
        assert (code, enhanced) == (550, "5.7.1"), case
        if case.contact and case.reason in ("not_approved", "unusual_form"):
            assert f"resembles approved contact {case.contact} (" in text, (case, text)
        else:
            assert "resembles" not in text, (case, text)
        if case.reason == "expired":
            assert f"{case.contact} expired on" in text


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "gateway.db")
    sample_contacts(s, TODAY)
    return s


@pytest.mark.parametrize("case", CASES, ids=[f"{c.label}: {c.address}" for c in CASES])
async def test_address_as_plain_filter_call(store: Store, case: Case) -> None:
    pipeline = make_pipeline(store, TODAY)
    tx = new_tx()
    if case.expect == "ok":
        await pipeline.on_rcpt(tx, case.address)
        record = tx.annotations["recipients"][case.address]
        if case.contact == "internal":
            assert record["internal"] is True
        else:
            assert record["contact_id"] == case.contact
        return
    with pytest.raises(Refused) as refused:
        await pipeline.on_rcpt(tx, case.address)
    r = refused.value
    check_reply(case, r.code, r.enhanced, r.text)
    assert r.reference.startswith("R-") and len(r.reference) == 6
    if case.expect != "syntax" or case.address in tx.annotations.get("recipients", {}):
        record = tx.annotations["recipients"][case.address]
        assert record["reference"] == r.reference
        if case.reason:
            assert record["refused"] == case.reason
        if case.contact and case.reason in ("not_approved", "unusual_form"):
            assert record["resembles"] == case.contact
