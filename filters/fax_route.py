"""Fax routes are refused, approved or not.

Policy: "Transmission of personal information by fax is not permitted at any time."
An email address can be a fax machine in disguise: the local part may carry a phone
number for a gateway (RFC 3191/3192 ``FAX=+number``, Exchange's ``IMCEAFAX-`` and
one-off ``[FAX:...]`` forms, X.400 ``/C=.../`` paths), or the domain may belong to a
fax-to-email service (kept as data: the list shipped in the package,
``gateway/shipped/fax-providers.txt``, or the ``providers_file`` the config names).

Hard signs refuse whatever the contact list says. Softer signs (a local part that is only
a phone number, a ``fax``-like domain label, a ``team-fax`` role mailbox) are refused
unless an admin has attested that exact approved contact as not a fax route
(``c4f-gateway contacts add --not-fax`` or ``contacts review --not-fax``).
Provider domains and labels are compared as whole labels, never by substring, so
fairfax.gov, halifax.co.uk, carfax.com and Ali Fax are not caught.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import structlog

from gateway.directory.addresses import (
    AddressSyntaxError,
    AmbiguousHeader,
    header_addresses,
    normalise,
    raw_parts,
)
from gateway.directory.contact_cache import ContactCache
from gateway.directory.contacts_sealed import keyring_for
from gateway.directory.lookalike import mask
from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.mail.headers import HeaderField, header_fields
from gateway.pipeline import Content, FilterContext, checked_options

log = structlog.get_logger("filters.fax_route")

# The list that ships with the gateway (package data, found in an installed wheel too).
DEFAULT_PROVIDERS_FILE: Traversable = files("gateway") / "shipped" / "fax-providers.txt"
RECIPIENT_HEADERS = ("to", "cc", "resent-to", "resent-cc")

# RFC 3191 (GSTN) and RFC 3192 (FAX) local parts, optionally wrapped in "/" as when
# mapped through X.400 (RFC 2846); VPIM (RFC 3801) uses VOICE= and AMIS=.
_GSTN = re.compile(r"(?:^|/)\s*(?:fax|t33s|voice|amis|vpim|pstn|tel)\s*=", re.I)
# Exchange encapsulates non-SMTP addresses as IMCEA<type>-...@<any ordinary domain>.
_IMCEA = re.compile(r"^imcea(?:fax|x400)-", re.I)
# Outlook one-off forms: [FAX:Name@+44 20 ...], [MSFAX:...].
_ONE_OFF = re.compile(r"^\s*\[?\s*(?:ms)?fax\s*:", re.I)
# X.400 O/R address attributes (RFC 2156): /C=GB/ADMD=.../PRMD=.../O=.../S=.../
_X400 = re.compile(r"(?:^|/)\s*(?:c|admd|prmd|o|ou\d?|s|g|i|cn|dda\.[a-z]+)\s*=[^/]*/", re.I)
_PHONE_ONLY = re.compile(r"^\+?[0-9][0-9 ().\-]*$")
# A domain label (or a hyphen-separated part of one) naming a fax service: fax, efax,
# myfax, fax2mail, faxmail, fax-gw, fax1 ... but not fairfax, halifax or carfax.
_FAX_LABEL = re.compile(
    r"^(?:e|i|my|go|rc|sr|net|web)?fax(?:2?e?mail|to(?:e?mail)?|gw|gateway|server|es|\d+)?$"
)
_FAX_TOKEN = re.compile(r"^(?:e?fax(?:es|\d+|2?e?mail)?)$")
# Role words that, next to "fax", make a shared fax mailbox; a person's name does not.
_ROLE_WORDS = frozenset(
    "team office main admin dept department ward reception incoming inbound outbound "  # noqa: SIM905 (word list)
    "in out secure central general hub clinic surgery gp referrals referral duty mash "
    "safeguarding enquiries desk service services line".split()
)


@dataclass(frozen=True)
class FaxSign:
    hard: bool  # refused even when approved
    rule: str  # short code for logs and the register
    reason: str  # what the sender is told


def load_providers(path: Path | Traversable) -> frozenset[str]:
    """Read the provider list; a bad line stops start-up with ``file:line``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read fax provider list: {exc.strerror}") from exc
    found: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip().lower().rstrip(".")
        if not entry:
            continue
        labels = entry.split(".")
        if len(labels) < 2 or not all(
            re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", x) for x in labels
        ):
            raise ConfigError(f"{path}:{n}: {line.strip()!r} is not a domain name")
        found.add(entry)
    return frozenset(found)


def under(domain: str, parents: frozenset[str]) -> str | None:
    """The entry of ``parents`` that ``domain`` equals or sits under (whole labels)."""
    labels = domain.lower().rstrip(".").split(".")
    for i in range(len(labels) - 1):
        suffix = ".".join(labels[i:])
        if suffix in parents:
            return suffix
    return None


def is_fax_label(label: str) -> bool:
    return any(_FAX_LABEL.match(part) for part in label.lower().split("-"))


class FaxRoutes:
    def __init__(self, providers: frozenset[str]) -> None:
        self.providers = providers

    def classify(self, address: str) -> FaxSign | None:
        """The strongest fax sign in ``address`` (hard before soft), or None."""
        if _ONE_OFF.match(address):
            return FaxSign(True, "one-off", "an Outlook one-off fax address ([FAX:...])")
        local, domain = raw_parts(address)
        base = local.split("+", 1)[0] if not local.startswith("+") else local
        if _GSTN.search(local):
            return FaxSign(
                True,
                "rfc3192",
                "a fax or telephone gateway address (RFC 3191/3192 FAX=, VOICE=, AMIS=)",
            )
        if _IMCEA.match(local):
            return FaxSign(
                True, "imceafax", "an Exchange-encapsulated fax or X.400 address (IMCEAFAX-)"
            )
        if _X400.search(local) or (local.startswith("/") and "=" in local):
            return FaxSign(True, "x400", "an X.400-style address (/C=.../), a gateway route")
        d = domain.lower().rstrip(".")
        if d and not d.startswith("["):
            if "." not in d:
                return FaxSign(
                    True, "dotless-domain", "a domain without a dot, as fax gateways use"
                )
            if not re.search(r"[a-z]", d):
                return FaxSign(True, "numeric-domain", "a numeric domain (a phone number?)")
            provider = under(d, self.providers)
            if provider is not None:
                return FaxSign(True, "provider", f"an address at fax service {provider}")
        if _PHONE_ONLY.match(base) and sum(c.isdigit() for c in base) >= 7:
            return FaxSign(False, "phone-number", "a mailbox named only by a phone number")
        if any(is_fax_label(label) for label in d.split(".")[:-1]):
            return FaxSign(False, "fax-domain-label", "a domain that names a fax service")
        tokens = [t for t in re.split(r"[._\-+]", local.lower()) if t]
        if any(_FAX_TOKEN.match(t) for t in tokens) and all(
            _FAX_TOKEN.match(t) or t in _ROLE_WORDS or t.isdigit() for t in tokens
        ):
            return FaxSign(False, "fax-role-mailbox", "a shared fax mailbox (e.g. team-fax)")
        return None

    def refusal(self, address: str) -> str | None:
        """Why ``address`` cannot be approved as a contact (a hard fax sign), or None: the
        veto of ``contacts import`` and the console's import."""
        sign = self.classify(address)
        return f"{sign.reason}: fax routes cannot be approved" if sign and sign.hard else None


def create(options: dict[str, Any], context: FilterContext) -> FaxRouteFilter:
    checked_options(context, "fax_route", options, ("providers_file",))
    path = providers_path(options.get("providers_file"), context.settings.base_dir)
    cache = ContactCache(context.store, keyring_for(context.settings))
    return FaxRouteFilter(FaxRoutes(load_providers(path)), cache)


def providers_path(raw: object, base: Path) -> Path | Traversable:
    """The ``providers_file`` option as a path (relative to the config file's folder)."""
    if raw is None:
        return DEFAULT_PROVIDERS_FILE
    if not isinstance(raw, str) or not raw:
        raise ConfigError("filter.fax_route: providers_file: expected a path")
    return Path(raw) if Path(raw).is_absolute() else base / raw


class FaxRouteFilter:
    name = "fax_route"

    def __init__(self, routes: FaxRoutes, contacts: ContactCache) -> None:
        self.routes = routes
        self.contacts = contacts

    def _attested(self, address: str) -> bool:
        snap = self.contacts.current()
        entry = snap.exact.get(address)
        if entry is None:
            try:
                addr = normalise(address)
            except AddressSyntaxError:
                return False
            # REL-5: an attested mailbox stays attested under a +tag; a sub-address with an
            # entry of its own needs its own attestation.
            entry = snap.by_key.get(addr.key) or snap.mailbox_of(addr)
        return entry is not None and bool(entry.not_fax_by)

    def check(self, tx: Transaction, address: str, where: str) -> None:
        sign = self.routes.classify(address)
        if sign is None or (not sign.hard and self._attested(address)):
            return
        reference = "R-" + secrets.token_hex(2).upper()
        recipients = tx.annotations.setdefault("recipients", {})
        recipients[address] = {"refused": "fax_route", "rule": sign.rule, "reference": reference}
        log.info(
            "recipient_refused",
            reason="fax_route",
            rule=sign.rule,
            where=where,
            address=mask(address),
            queue_id=tx.queue_id,
            staff=tx.session.user,
            reference=reference,
        )
        text = (
            f"{where}Recipient is {sign.reason}; sending personal information by fax is "
            "not permitted (confidentiality policy)"
        )
        if not sign.hard:
            text += "; if this contact is not a fax service, ask an admin to attest it"
        raise Refused(550, "5.7.1", text, reference=reference)

    async def on_rcpt(self, tx: Transaction, address: str) -> None:
        self.check(tx, address, "")

    async def on_data(self, tx: Transaction, content: Content) -> Content:
        fields = header_fields(content)
        wanted: list[HeaderField] = [f for f in fields if f.key in RECIPIENT_HEADERS]
        try:
            addresses = header_addresses(wanted)
        except AmbiguousHeader as exc:
            raise Refused(
                550,
                "5.7.1",
                f"{exc}; write each recipient as name <address>",
                reference="R-" + secrets.token_hex(2).upper(),
            ) from None
        for address in addresses:
            self.check(tx, address, "To/Cc header: ")
        return content
