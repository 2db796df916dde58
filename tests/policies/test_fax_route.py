"""filters.fax_route: fax routes are refused, approved or not (REL-4)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.contacts import contacts_keyring, settings_for

from filters.fax_route import (
    DEFAULT_PROVIDERS_FILE,
    FaxRoutes,
    create,
    load_providers,
)
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.envelope import Session, Transaction
from gateway.errors import ConfigError, Refused
from gateway.pipeline import FilterContext
from gateway.store import Store

REQUIRED_PROVIDERS = [
    "efaxsend.com",
    "fax.com",
    "rcfax.com",
    "myfax.com",
    "metrofax.com",
    "nextivafax.com",
    "srfax.com",
    "faxage.com",
    "fax.tc",
    "fax.plus",
    "sinchfax.com",
    "rfax.net",
    "shoretelfax.com",
    "faxmaker.com",
    "prestofax.com",
    "versturen.nu",
    "hellofax.com",
]


@pytest.fixture(scope="module")
def routes() -> FaxRoutes:
    return FaxRoutes(load_providers(DEFAULT_PROVIDERS_FILE))


def test_provider_list_holds_the_required_domains() -> None:
    providers = load_providers(DEFAULT_PROVIDERS_FILE)
    assert set(REQUIRED_PROVIDERS) <= providers


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("FAX=+442079460000@corp.example", "rfc3192"),
        ("fax=+442079460000@corp.example", "rfc3192"),
        ("/FAX=+442079460000/@corp.example", "rfc3192"),
        ('"/FAX=+44 20 7946 0000/"@corp.example', "rfc3192"),
        ("/fax=+442079460000/t33s=6377@corp.example", "rfc3192"),
        ("VOICE=+15551234567@vpim.example", "rfc3192"),
        ("AMIS=+15551234567/T33S=2@vpim.example", "rfc3192"),
        ("Vpim=+15551234567@vpim.example", "rfc3192"),
        ("IMCEAFAX-+2B442079460000@ordinary-council.gov.uk", "imceafax"),
        ("imceafax-Jane+40+2B4420@corp.example", "imceafax"),
        ("[FAX:Jane Smith@+44 20 7946 0000]", "one-off"),
        ("[MSFAX:Jane@+442079460000]", "one-off"),
        ("/C=GB/ADMD=BT/PRMD=HMG/S=SMITH/@x400.example", "x400"),
        ("someone@fax", "dotless-domain"),
        ("4412345@12345.678", "numeric-domain"),
        ("02079460000@efaxsend.com", "provider"),
        ("anyone@EFAXSEND.COM", "provider"),
        ("x@uk.myfax.com", "provider"),
        ("02079460000+tag@srfax.com", "provider"),
        ('"02079460000"@fax.plus', "provider"),
        ("a@versturen.nu", "provider"),
    ],
)
def test_hard_signs(routes: FaxRoutes, address: str, rule: str) -> None:
    sign = routes.classify(address)
    assert sign is not None and sign.hard and sign.rule == rule


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("+442079460000@corp.example", "phone-number"),
        ("02079460000@corp.example", "phone-number"),
        ("020-7946-0000+x@corp.example", "phone-number"),
        ("records@fax.cafcass.gov.uk", "fax-domain-label"),
        ("a@nhs-fax.example", "fax-domain-label"),
        ("a@efax2mail.example", "fax-domain-label"),
        ("a@fax2mail.example", "fax-domain-label"),
        ("team-fax@council.gov.uk", "fax-role-mailbox"),
        ("Fax@council.gov.uk", "fax-role-mailbox"),
        ("office.fax@council.gov.uk", "fax-role-mailbox"),
        ("fax2@council.gov.uk", "fax-role-mailbox"),
    ],
)
def test_soft_signs(routes: FaxRoutes, address: str, rule: str) -> None:
    sign = routes.classify(address)
    assert sign is not None and not sign.hard and sign.rule == rule


@pytest.mark.parametrize(
    "address",
    [
        "info@fairfax.gov",
        "jo@halifax.co.uk",
        "j.smith@carfax.com",
        "ali.fax@nhs.net",
        "a.fax@council.gov.uk",
        "fax.ali@council.gov.uk",
        "j.smith+fax@council.gov.uk",
        "faxon@council.gov.uk",
        "a@notfax.com",  # a whole label, not a substring of one
        "j.whitaker@cafcass.gov.uk",
        "ok@[192.0.2.1]",  # a literal: odd, judged by the contacts filter instead
        "tel.team@council.gov.uk",
        "12345@council.gov.uk",  # too short for a phone number
    ],
)
def test_harmless_but_tricky(routes: FaxRoutes, address: str) -> None:
    assert routes.classify(address) is None


def test_bad_provider_line_stops_start_up(tmp_path: Path) -> None:
    f = tmp_path / "providers.txt"
    f.write_text("# comment\nefaxsend.com\n\nnot a domain\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"providers.txt:4: 'not a domain'"):
        load_providers(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_providers(tmp_path / "missing.txt")


def _context(tmp_path: Path) -> FilterContext:
    store = Store(tmp_path / "gateway.db")
    return FilterContext(settings=settings_for(store), store=store)


def test_options(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (tmp_path / "mine.txt").write_text("faxes.example\n", encoding="utf-8")
    f = create({"providers_file": "mine.txt"}, ctx)  # relative to the config file
    assert f.routes.providers == frozenset({"faxes.example"})
    with pytest.raises(ConfigError, match="unknown option"):
        create({"providers": "x"}, ctx)
    with pytest.raises(ConfigError, match="providers_file: expected a path"):
        create({"providers_file": 3}, ctx)


def _tx() -> Transaction:
    return Transaction(Session("127.0.0.1", "client.test", "alice@c4f.example", True), "Q1")


def _add(store: Store, address: str, kind: str = "address", not_fax_by: str = "") -> None:
    repo = ContactRepository(
        store, lambda: datetime(2026, 3, 2, tzinfo=UTC), keyring=contacts_keyring(store)
    )
    repo.add(
        Contact(
            0,
            kind,
            address,
            "Someone",
            "Org",
            "",
            "Sam",
            "2026-03-01",  # type: ignore[arg-type]
            "phoned back",
            "2027-03-01",
            not_fax_by=not_fax_by,
            not_fax_on="2026-03-01" if not_fax_by else "",
        ),
        "Sam",
    )


async def test_hard_sign_refused_even_when_approved(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    _add(ctx.store, "IMCEAFAX-+2B442079460000@council.gov.uk", not_fax_by="Sam")
    f = create({}, ctx)
    tx = _tx()
    with pytest.raises(Refused) as r:
        await f.on_rcpt(tx, "IMCEAFAX-+2B442079460000@council.gov.uk")
    assert (r.value.code, r.value.enhanced) == (550, "5.7.1")
    assert "fax is not permitted" in r.value.text and "attest" not in r.value.text
    record = tx.annotations["recipients"]["IMCEAFAX-+2B442079460000@council.gov.uk"]
    assert record == {"refused": "fax_route", "rule": "imceafax", "reference": r.value.reference}


async def test_soft_sign_passes_only_when_that_contact_is_attested(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    f = create({}, ctx)
    with pytest.raises(Refused) as r:
        await f.on_rcpt(_tx(), "team-fax@council.gov.uk")
    assert "ask an admin to attest it" in r.value.text
    _add(ctx.store, "team-fax@council.gov.uk")  # approved, but not attested
    with pytest.raises(Refused):
        await f.on_rcpt(_tx(), "Team-Fax@council.gov.uk")
    _add(ctx.store, "council.gov.uk", kind="domain", not_fax_by="Sam")
    with pytest.raises(Refused):  # a whole-domain attestation does not cover a fax mailbox
        await f.on_rcpt(_tx(), "fax@council.gov.uk")
    _add(ctx.store, "02079460000@surgery.nhs.uk", not_fax_by="Sam")
    await f.on_rcpt(_tx(), "02079460000@surgery.nhs.uk")  # attested: passes (next: contacts)


async def test_header_recipients_are_checked_at_data(tmp_path: Path) -> None:
    f = create({}, _context(tmp_path))
    tx = _tx()
    tx.rcpt_tos.append("j.whitaker@cafcass.gov.uk")
    content = (
        b"From: alice@c4f.example\r\nTo: j.whitaker@cafcass.gov.uk\r\n"
        b"Cc: Fax <02079460000@efaxsend.com>\r\nSubject: x\r\n\r\nbody\r\n"
    )
    with pytest.raises(Refused) as r:
        await f.on_data(tx, content)
    assert r.value.text.startswith("To/Cc header: Recipient is an address at fax service")
    clean = b"From: alice@c4f.example\r\nTo: j.whitaker@cafcass.gov.uk\r\n\r\nbody\r\n"
    assert await f.on_data(_tx(), clean) == clean  # bytes unchanged
