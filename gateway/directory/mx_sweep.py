"""DNS-revealed fax routes: where does each approved contact's mail really go?

An ordinary-looking domain can hand its mail to a fax-to-email service. Once a day (and
when a contact is added, and on ``contacts review``) we look up each contact domain's MX
hosts and flag:

- ``fax_mx``: an MX host at or under a fax provider's domain, or run by the same operator
  as a fax provider's own MX hosts. Shared operators (Microsoft 365, Google, Mimecast,
  Proofpoint ...) are excluded: many providers use them for their own office mail. This
  flag is stored on the contact and the contacts filter refuses it until an admin reviews.
- ``mx_changed``: the MX hosts differ from the ones seen at approval (review it).
- ``no_mail``: the domain does not exist or refuses all mail (RFC 7505 null MX): a lapsed
  domain can be re-registered by anyone.
- ``lookup_failed``: DNS did not answer; nothing is changed.

Sending never waits on DNS: the filter reads only what the sweep stored.
The resolver is injected (anything with dnspython's ``resolve(name, "MX")``);
:func:`default_resolver` builds the real one from the ``[dns]`` settings.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import dns.exception
import dns.nameserver
import dns.resolver
import structlog

from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.lookalike import registrable
from gateway.settings.dns import DnsSettings

log = structlog.get_logger("gateway.mx_sweep")

# Mail operators shared by countless unrelated organisations (registrable domains of
# their MX hosts): a fax provider using them says nothing about other customers.
SHARED_OPERATORS = frozenset(
    "outlook.com office365.com microsoft.com google.com googlemail.com gmail.com "  # noqa: SIM905 (word list)
    "mimecast.com mimecast.co.za pphosted.com ppe-hosted.com proofpoint.com "
    "messagelabs.com barracudanetworks.com mailcontrol.com emailsrvr.com "
    "secureserver.net zoho.com zoho.eu amazonaws.com icloud.com yahoodns.net "
    "sophos.com trendmicro.eu trendmicro.com nhs.net".split()
)
CONCURRENCY = 8


class MXResolver(Protocol):
    def resolve(self, qname: str, rdtype: str) -> Iterable[Any]: ...


@dataclass(frozen=True)
class Flag:
    contact_id: int
    domain: str
    kind: Literal["fax_mx", "mx_changed", "no_mail", "lookup_failed"]
    detail: str

    @property
    def ref(self) -> str:
        return f"C-{self.contact_id:03d}"


class LookupFailed(Exception):
    pass


def default_resolver(settings: DnsSettings) -> MXResolver:
    """dnspython's resolver as ``[dns]`` says: its nameservers in order, or the system's."""
    servers = settings.servers
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(a, port) for a, port in servers]
    resolver.lifetime = settings.timeout
    return resolver


def lookup_mx(resolver: MXResolver, domain: str) -> tuple[str, ...]:
    """Sorted MX host names; ``()`` when the domain takes no mail. Blocking."""
    try:
        answer = resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        return ()
    except dns.resolver.NoAnswer:
        return (domain,)  # RFC 5321 5.1: no MX means the domain itself is the mail host
    except (dns.exception.DNSException, OSError) as exc:
        raise LookupFailed(type(exc).__name__) from None
    hosts = {str(r.exchange).rstrip(".").lower() for r in answer}
    hosts.discard("")  # RFC 7505 null MX ("0 ."): this domain accepts no mail
    return tuple(sorted(hosts))


def _under(host: str, parents: Collection[str]) -> str | None:
    labels = host.split(".")
    return next(
        (".".join(labels[i:]) for i in range(len(labels) - 1) if ".".join(labels[i:]) in parents),
        None,
    )


def _operator(host: str) -> str:
    name, suffix = registrable(host)
    return f"{name}.{suffix}"


def fax_host(
    hosts: Iterable[str], providers: Collection[str], operators: Collection[str]
) -> str | None:
    """Why these MX hosts mean a fax service, or None."""
    for host in hosts:
        provider = _under(host, providers)
        if provider:
            return f"MX {host} belongs to fax service {provider}"
        if _operator(host) in operators:
            return f"MX {host} is run by the operator of a fax service's mail ({_operator(host)})"
    return None


async def _lookup_all(
    resolver: MXResolver, domains: Iterable[str], looked_up: Callable[[], None] = lambda: None
) -> dict[str, tuple[str, ...] | LookupFailed]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(domain: str) -> tuple[str, tuple[str, ...] | LookupFailed]:
        async with gate:
            try:
                return domain, await asyncio.to_thread(lookup_mx, resolver, domain)
            except LookupFailed as exc:
                return domain, exc
            finally:
                looked_up()

    return dict(await asyncio.gather(*(one(d) for d in sorted(set(domains)))))


async def sweep(
    repo: ContactRepository,
    resolver: MXResolver,
    providers: Collection[str],
    *,
    domains: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Flag]:
    """Check every contact domain (or only ``domains``); store what was seen; return flags.
    Times come from ``repo``'s clock. ``progress(domains looked up, domains)`` counts the
    fax services' domains (looked up first) and the contacts' domains."""
    by_domain: dict[str, list[Contact]] = defaultdict(list)
    for c in repo.all():
        if not c.domain.startswith("[") and (domains is None or c.domain in domains):
            by_domain[c.domain].append(c)
    if not by_domain:
        return []
    total, done = len(set(providers)) + len(by_domain), 0

    def looked_up() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    operators = set()
    for hosts in (await _lookup_all(resolver, providers, looked_up)).values():
        if not isinstance(hosts, LookupFailed):
            operators |= {_operator(h) for h in hosts}
    operators -= SHARED_OPERATORS
    seen = await _lookup_all(resolver, by_domain, looked_up)
    now = repo.clock().isoformat(timespec="seconds")
    flags: list[Flag] = []
    for domain, contacts in sorted(by_domain.items()):
        hosts = seen[domain]
        for c in contacts:
            if isinstance(hosts, LookupFailed):
                flags.append(Flag(c.id, domain, "lookup_failed", f"DNS error {hosts}"))
                continue
            flags.extend(_judge(repo, c, hosts, providers, operators, now))
    for f in flags:
        log.warning("contact_flagged", contact=f.ref, kind=f.kind, detail=f.detail)
    return flags


def _judge(
    repo: ContactRepository,
    c: Contact,
    hosts: tuple[str, ...],
    providers: Collection[str],
    operators: Collection[str],
    now: str,
) -> list[Flag]:
    repo.record_mx(c.id, hosts, now)
    flags: list[Flag] = []
    if not hosts:
        flags.append(Flag(c.id, c.domain, "no_mail", "domain does not exist or takes no mail"))
    reason = fax_host(hosts, providers, operators)
    if reason is not None:
        flags.append(Flag(c.id, c.domain, "fax_mx", reason))
        if c.mx_flag != reason:
            repo.update(c.id, "mx-sweep", "mx-sweep", mx_flag=reason)
    if c.mx_hosts is None:
        repo.update(c.id, "mx-sweep", "mx-sweep", mx_hosts=hosts)  # first look: the baseline
    elif set(c.mx_hosts) != set(hosts):
        flags.append(
            Flag(
                c.id,
                c.domain,
                "mx_changed",
                f"{', '.join(c.mx_hosts) or '(none)'} -> {', '.join(hosts) or '(none)'}",
            )
        )
    return flags
