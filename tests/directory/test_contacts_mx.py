"""gateway.directory.mx_sweep with an injected resolver: DNS-revealed fax routes and MX changes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.exception
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from support.contacts import contacts_keyring, settings_for

from filters import contacts as contacts_filter
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.mx_sweep import lookup_mx, sweep
from gateway.envelope import Session, Transaction
from gateway.errors import Refused
from gateway.pipeline import FilterContext
from gateway.store import Store

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
PROVIDERS = frozenset({"efaxsend.com", "hellofax.com"})


class FakeResolver:
    """dnspython's ``resolve(name, "MX")`` over a dict; records every question."""

    def __init__(self, zones: dict[str, list[str] | Exception]) -> None:
        self.zones = zones
        self.asked: list[tuple[str, str]] = []

    def resolve(self, qname: str, rdtype: str) -> Iterable[Any]:
        self.asked.append((qname, rdtype))
        answer = self.zones.get(qname, dns.resolver.NXDOMAIN())
        if isinstance(answer, Exception):
            raise answer
        return [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, text) for text in answer]


def zones(extra: dict[str, Any] | None = None) -> dict[str, list[str] | Exception]:
    base: dict[str, list[str] | Exception] = {
        # The providers' own mail: j2 runs efaxsend's; hellofax uses Google (shared).
        "efaxsend.com": ["10 mx1.j2.com.", "20 mx2.j2.com."],
        "hellofax.com": ["1 aspmx.l.google.com."],
        "cafcass.gov.uk": ["10 cafcass-gov-uk.mail.protection.outlook.com."],
    }
    base.update(extra or {})
    return base


@pytest.fixture
def repo(tmp_path: Path) -> ContactRepository:
    store = Store(tmp_path / "gateway.db")
    return ContactRepository(store, lambda: NOW, keyring=contacts_keyring(store))


def add(repo: ContactRepository, address: str, kind: str = "address") -> Contact:
    return repo.add(
        Contact(
            0,
            kind,
            address,
            "Name",
            "Org",
            "",
            "Sam",
            "2026-03-01",  # type: ignore[arg-type]
            "phoned back",
            "2027-03-01",
        ),
        "Sam",
    )


async def run(
    repo: ContactRepository, resolver: FakeResolver, domains: set[str] | None = None
) -> list[tuple[str, str, str]]:
    flags = await sweep(repo, resolver, PROVIDERS, domains=domains)
    return [(f.ref, f.kind, f.detail) for f in flags]


async def test_first_sweep_records_the_baseline_and_flags_nothing(
    repo: ContactRepository,
) -> None:
    c = add(repo, "j.whitaker@cafcass.gov.uk")
    assert await run(repo, FakeResolver(zones())) == []
    after = repo.get(c.id)
    assert after is not None
    assert after.mx_hosts == ("cafcass-gov-uk.mail.protection.outlook.com",)
    assert after.mx_seen == after.mx_hosts and after.mx_checked_at == "2026-03-02T03:00:00+00:00"
    assert [r["action"] for r in repo.history(c.id)] == ["add", "mx-sweep"]


async def test_mx_at_a_fax_provider_is_flagged_and_then_refused(
    repo: ContactRepository,
) -> None:
    c = add(repo, "records@council-faxes.example")
    resolver = FakeResolver(zones({"council-faxes.example": ["10 inbound.efaxsend.com."]}))
    flags = await run(repo, resolver)
    assert flags == [
        ("C-001", "fax_mx", "MX inbound.efaxsend.com belongs to fax service efaxsend.com")
    ]
    stored = repo.get(c.id)
    assert stored is not None and stored.mx_flag.startswith("MX inbound.efaxsend.com")
    # Sending reads what the sweep stored (no DNS at send time).
    f = contacts_filter.create({}, FilterContext(settings_for(repo.store), repo.store))
    t = Transaction(Session("127.0.0.1", "h", "alice@c4f.example", True), "Q1")
    with pytest.raises(Refused) as r:
        await f.on_rcpt(t, "records@council-faxes.example")
    assert "handled by a fax service" in r.value.text
    # An admin reviews and accepts; the next sweep flags it again while it is still true.
    repo.update(c.id, "Kim", "accept-mx", mx_flag="")
    await f.on_rcpt(t, "records@council-faxes.example")
    assert [x[1] for x in await run(repo, resolver)] == ["fax_mx"]


async def test_mx_run_by_a_fax_providers_operator_is_flagged(repo: ContactRepository) -> None:
    add(repo, "fax-gateway.example", kind="domain")
    flags = await run(repo, FakeResolver(zones({"fax-gateway.example": ["5 mx9.j2.com."]})))
    assert flags == [
        ("C-001", "fax_mx", "MX mx9.j2.com is run by the operator of a fax service's mail (j2.com)")
    ]


async def test_shared_operators_are_not_fax_routes(repo: ContactRepository) -> None:
    add(repo, "someone@school.example")  # Google mail, like hellofax's own office mail
    resolver = FakeResolver(
        zones({"school.example": ["1 aspmx.l.google.com.", "5 alt1.aspmx.l.google.com."]})
    )
    assert await run(repo, resolver) == []


async def test_changed_mx_is_flagged_until_accepted(repo: ContactRepository) -> None:
    c = add(repo, "j.whitaker@cafcass.gov.uk")
    await run(repo, FakeResolver(zones()))
    moved = FakeResolver(zones({"cafcass.gov.uk": ["10 mx.new-host.example."]}))
    assert await run(repo, moved) == [
        (
            "C-001",
            "mx_changed",
            "cafcass-gov-uk.mail.protection.outlook.com -> mx.new-host.example",
        )
    ]
    seen = repo.get(c.id)
    assert seen is not None and seen.mx_seen == ("mx.new-host.example",)
    repo.update(c.id, "Kim", "accept-mx", mx_hosts=seen.mx_seen)
    assert await run(repo, moved) == []


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (dns.resolver.NXDOMAIN(), "no_mail"),
        (["0 ."], "no_mail"),  # RFC 7505 null MX
        (dns.exception.Timeout(), "lookup_failed"),
        (dns.resolver.NoNameservers(), "lookup_failed"),
    ],
)
async def test_dns_trouble(repo: ContactRepository, answer: Any, kind: str) -> None:
    c = add(repo, "x@gone.example")
    flags = await run(repo, FakeResolver(zones({"gone.example": answer})))
    assert [f[1] for f in flags] == [kind]
    stored = repo.get(c.id)
    assert stored is not None
    if kind == "lookup_failed":
        assert stored.mx_hosts is None and stored.mx_checked_at == ""  # nothing changed
    else:
        assert stored.mx_hosts == ()


def test_no_mx_record_means_the_domain_itself() -> None:
    resolver = FakeResolver({"plain.example": dns.resolver.NoAnswer()})
    assert lookup_mx(resolver, "plain.example") == ("plain.example",)


async def test_sweep_can_be_limited_to_some_domains(repo: ContactRepository) -> None:
    add(repo, "j.whitaker@cafcass.gov.uk")
    add(repo, "x@other.example")
    repo.add(
        Contact(
            0,
            "address",
            "y@[192.0.2.11]",
            "Y",
            "Org",
            "",
            "Sam",
            "2026-03-01",
            "phoned",
            "2027-03-01",
            unusual=True,
        ),
        "Sam",
    )  # a literal has no MX
    resolver = FakeResolver(zones({"other.example": ["10 mx.other.example."]}))
    await run(repo, resolver, domains={"cafcass.gov.uk"})
    contact_questions = [q for q, _ in resolver.asked if q not in PROVIDERS]
    assert contact_questions == ["cafcass.gov.uk"]
    resolver.asked.clear()
    await run(repo, resolver)
    contact_questions = sorted(q for q, _ in resolver.asked if q not in PROVIDERS)
    assert contact_questions == ["cafcass.gov.uk", "other.example"]
    assert all(rdtype == "MX" for _, rdtype in resolver.asked)
