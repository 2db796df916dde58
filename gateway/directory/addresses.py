"""Where address syntax is judged: one recipient address in, one verdict out.

The gateway compares recipients against approved contacts, and what it compares must be
what it sends (REL-3). So this module never rewrites an address for the caller; it says
whether the address is plain, unusual, or invalid:

- :func:`normalise` parses one address with email-validator (no DNS: sending never waits
  on the network) and returns an :class:`Address`, or raises :class:`AddressSyntaxError`
  (the caller answers ``553 5.1.3``).
- ``Address.unusual`` names the odd shapes (quoted local part, domain literal, non-ASCII
  or SMTPUTF8, ``xn--`` labels, ``%`` and ``!`` routing): legal, but a classic way to
  make two systems read one address differently, so the policy accepts them only when an
  admin approved exactly that string.
- ``Address.rewritten`` is true when email-validator's normal form differs from the
  given text other than by ASCII case; such an address must be refused, not silently
  rewritten, so the address sent upstream stays byte-equal to the one compared.
- ``Address.key`` is the comparison key for plain addresses: the domain is
  case-insensitive (RFC 5321 2.4) and, as real mail systems do, so is the local part.
- ``Address.mailbox_key`` is the key of the mailbox the address reaches: Microsoft 365
  and Google deliver ``local+tag`` to ``local`` (sub-addressing, RFC 5233), so a contact
  rule made for ``local@domain`` must hold for every ``local+tag@domain`` too (REL-5).

:func:`header_addresses` reads the addresses of To/Cc-like header fields and refuses
(raises :class:`AmbiguousHeader`) when two parsers do not agree on them;
:func:`spelled_addresses` finds what a reader would take for an address in the text a
mail client shows (a display name, a comment), confusable ``@`` included.
"""

from __future__ import annotations

import email.utils
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email.errors import NonASCIILocalPartDefect, ObsoleteHeaderDefect
from email.headerregistry import HeaderRegistry

from email_validator import EmailNotValidError, validate_email

from gateway.mail.headers import HeaderField

__all__ = [
    "Address",
    "AddressSyntaxError",
    "AmbiguousHeader",
    "header_addresses",
    "normalise",
    "raw_parts",
    "spelled_addresses",
]


class AddressSyntaxError(ValueError):
    """Not an address we can relay to (``553 5.1.3``); ``str(exc)`` says why."""


class AmbiguousHeader(ValueError):
    """A recipient header field that parsers read differently (or not at all)."""


@dataclass(frozen=True)
class Address:
    given: str  # exactly as the caller gave it
    local: str  # local part as given (quotes kept)
    domain: str  # ASCII domain, lower case ("[192.0.2.1]" for a literal)
    unicode_domain: str  # the domain as people read it (IDNA decoded), lower case
    unusual: tuple[str, ...]  # why this shape needs exact approval; () for plain addresses
    rewritten: bool  # email-validator's normal form differs beyond ASCII case

    @property
    def key(self) -> str:
        """Comparison key: local part and domain, both case-insensitive."""
        return f"{self.local.lower()}@{self.domain}"

    @property
    def mailbox_key(self) -> str:
        """:attr:`key` without a ``+tag``; equal to it when there is no tag to drop."""
        base = self.local.split("+", 1)[0]
        # "+442079460000@..." is a number, not an empty mailbox with a tag.
        return f"{(base or self.local).lower()}@{self.domain}"

    @property
    def plain(self) -> bool:
        return not self.unusual and not self.rewritten


@functools.lru_cache(maxsize=4096)
def normalise(address: str) -> Address:
    """Parse one address (no DNS). Raises :class:`AddressSyntaxError` if invalid."""
    if not address or any(ord(c) < 0x21 or ord(c) == 0x7F for c in address if c != " "):
        # Control characters (a quoted CR survives aiosmtpd, reliability-tests.md §0).
        raise AddressSyntaxError("contains control characters or is empty")
    try:
        v = validate_email(
            address,
            check_deliverability=False,
            allow_quoted_local=True,
            allow_domain_literal=True,
            allow_smtputf8=True,
            allow_display_name=False,
            allow_empty_local=False,
            strict=True,  # RFC 5321 4.5.3.1.1: a local part is at most 64 octets
        )
    except EmailNotValidError as exc:
        raise AddressSyntaxError(str(exc)) from None
    local, _, domain = address.rpartition("@")
    unusual: list[str] = []
    if local.startswith('"'):
        unusual.append("quoted local part")
    if domain.startswith("["):
        unusual.append("domain literal")
    if not address.isascii():
        unusual.append("non-ASCII (SMTPUTF8) address")
    if any(label.lower().startswith("xn--") for label in domain.split(".")):
        unusual.append("punycode (xn--) domain")
    if "%" in local or "!" in local:
        # RFC 5321 2.3.11 and 3.6.1: "%" and "!" routing; another host may relay onwards.
        unusual.append("routing characters (% or !) in the local part")
    ascii_domain = (v.ascii_domain or v.domain).lower()
    return Address(
        given=address,
        local=local,
        domain=ascii_domain,
        unicode_domain=v.domain.lower(),
        unusual=tuple(unusual),
        rewritten=v.normalized.lower() != address.lower(),
    )


def raw_parts(address: str) -> tuple[str, str]:
    """Local part (unquoted, unescaped) and domain, split at the last "@", judging nothing.

    For checks that must see through quoting (a quoted ``"FAX=+1 555"`` is still a fax
    route); the address itself is judged by :func:`normalise`.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        inner = local[1:-1]
        out: list[str] = []
        escaped = False
        for c in inner:
            if escaped or c != "\\":
                out.append(c)
                escaped = False
            else:
                escaped = True
        local = "".join(out)
    return local, domain


_registry = HeaderRegistry()
# Defects that do not change which addresses are named ("J. Smith" <j@x> is common).
_HARMLESS = (ObsoleteHeaderDefect, NonASCIILocalPartDefect)


def header_addresses(fields: Iterable[HeaderField]) -> list[str]:
    """Every address in the given header fields (groups flattened, names dropped).

    Two parsers must agree on the list (CVE-2023-27043: a misparse names a different
    recipient from the one a mail client shows); otherwise :class:`AmbiguousHeader`.
    """
    found: list[str] = []
    for field in fields:
        found.extend(_field_addresses(field))
    return found


# The same To: and Cc: fields come again and again (each message is read by the contacts
# and the fax-route filters; staff write to the same people): the email package's parser
# is a tenth of a small message's time, and what it reads depends on the field alone.
# A field that raises is not kept (functools caches returns only).
@functools.lru_cache(maxsize=512)
def _field_addresses(field: HeaderField) -> tuple[str, ...]:
    label = field.name.strip().decode("ascii", "replace")
    try:
        value = field.value.decode("utf-8")
    except UnicodeDecodeError:
        raise AmbiguousHeader(f"{label}: header is not valid UTF-8") from None
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise AmbiguousHeader(f"{label}: header contains control characters")
    header = _registry(label, value)
    first = [a.addr_spec for g in header.groups for a in g.addresses]  # type: ignore[attr-defined]
    second = [a for _, a in email.utils.getaddresses([value]) if a]
    bad = [d for d in header.defects if not isinstance(d, _HARMLESS)]
    if bad or "<>" in first or [a.lower() for a in first] != [a.lower() for a in second]:
        raise AmbiguousHeader(f"{label}: header cannot be read unambiguously")
    return tuple(first)


# Characters a reader takes for "@" that NFKC does not fold to it (it makes "ⓐ" an "a").
_AT_LIKE = str.maketrans({"\u24d0": "@", "\u24b6": "@"})
# An "@" with whatever address characters surround it; the delimiters of RFC 5322 3.4 end it.
_SPELLED = re.compile(r"[^\s<>()\[\],;:\"'\\]*@[^\s<>()\[\],;:\"'\\]*")


def spelled_addresses(text: str) -> list[str]:
    """Every address-like string a reader would see in ``text`` (decoded header text).

    NFKC-normalised first (UAX #15), so a full-width ``＠`` or a small ``﹫`` (and full-width
    letters and dots) read as the address they show. Any ``@`` counts, even a lone one:
    for an originator's display name, a false alarm costs a retyped name, a miss a
    forged sender (HDR-7).
    """
    return _SPELLED.findall(unicodedata.normalize("NFKC", text.translate(_AT_LIKE)))


def own_domains(domains: Iterable[str]) -> frozenset[str]:
    """The centre's own domains (``organisation.domains``) as compared by :func:`goes_outside`."""
    return frozenset(d.lower().rstrip(".") for d in domains)


def goes_outside(addresses: Iterable[str], own: frozenset[str]) -> bool:
    """True when any address is outside the centre's own domains (a disclosure)."""
    return any(a.rpartition("@")[2].lower().rstrip(".") not in own for a in addresses)
