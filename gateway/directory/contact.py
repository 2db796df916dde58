"""One approved contact, and the rules a new or changed one must meet.

Policy: "The email address to which is being sent to will be carefully checked."
Each entry records who approved it, when, how the address was verified, and when the
approval must be reviewed (12 months by default: the policy itself is reviewed annually,
so approvals are too). Whole-domain entries exist only when added explicitly as such, and
a whole public webmail domain only with a recorded reason. The list itself, on the
shared store with its audit trail, is :mod:`gateway.directory.contacts`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from typing import Any, Literal

from gateway.directory.addresses import AddressSyntaxError, normalise
from gateway.directory.contacts_sealed import ContactsUnreadable
from gateway.directory.public_domains import PublicDomains
from gateway.directory.public_domains import load as load_public_domains

# What an admin decides about an entry: each change to these is audited (before/after).
AUDITED = tuple(
    "kind address display_name organisation role approved_by approved_on verified_how "  # noqa: SIM905 (word list)
    "review_due notes unusual not_fax_by not_fax_on requires_approval mx_hosts mx_flag "
    "public_domain_override".split()
)


class ContactError(ValueError):
    """A contact change that cannot be made; ``str(exc)`` says why."""


class PublicDomainError(ContactError):
    """A whole public webmail or disposable-mail domain, approved without an override."""

    def __init__(self, domain: str, source: str) -> None:
        self.domain = domain
        self.reason = (
            f"is a public email provider ({source}): anyone can have an address there; "
            "approve single addresses one by one"
        )
        super().__init__(f"domain {domain} {self.reason}, or give a public-domain override reason")


class BatchError(ContactError):
    """Entries of an all-or-nothing batch that cannot be added (``problems``: which, why)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} bad row(s); nothing imported")
        self.problems = problems


@dataclass(frozen=True)
class Contact:
    id: int
    kind: Literal["address", "domain"]
    address: str
    display_name: str
    organisation: str
    role: str
    approved_by: str
    approved_on: str
    verified_how: str
    review_due: str
    notes: str = ""
    unusual: bool = False
    not_fax_by: str = ""
    not_fax_on: str = ""
    mx_hosts: tuple[str, ...] | None = None
    mx_seen: tuple[str, ...] | None = None
    mx_checked_at: str = ""
    mx_flag: str = ""
    # Messages to this contact are held until a line manager approves them (filters/approval).
    requires_approval: bool = False
    # Why a whole public webmail domain is approved anyway (recorded; see public_domains).
    public_domain_override: str = ""

    @property
    def ref(self) -> str:
        return f"C-{self.id:03d}"

    @property
    def domain(self) -> str:
        return self.address if self.kind == "domain" else self.address.rpartition("@")[2].lower()

    def expired(self, today: date) -> bool:
        return today >= date.fromisoformat(self.review_due)

    @staticmethod
    def key_for(kind: str, address: str, unusual: bool) -> str:
        if kind == "domain":
            return "@" + address
        return "=" + address if unusual else normalise(address).key

    @property
    def key(self) -> str:
        return Contact.key_for(self.kind, self.address, self.unusual)

    @classmethod
    def from_fields(cls, contact_id: int, values: dict[str, Any]) -> Contact:
        """A contact from its sealed fields (:meth:`fields_to_seal`)."""
        known = {f.name for f in fields(cls)} - {"id"}
        kept = {k: v for k, v in values.items() if k in known}
        for name in ("mx_hosts", "mx_seen"):
            if kept.get(name) is not None:
                kept[name] = tuple(kept[name])
        try:
            return cls(id=contact_id, **kept)
        except TypeError:
            raise ContactsUnreadable(f"contact C-{contact_id:03d} lacks a field") from None

    def fields_to_seal(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "id"}

    def sweep_fields(self) -> dict[str, Any]:
        """What the MX sweep records and accepts (no CSV or form sets these)."""
        return {k: getattr(self, k) for k in ("mx_hosts", "mx_seen", "mx_checked_at", "mx_flag")}

    def audit_view(self) -> dict[str, Any]:
        # An empty override is left out, as rows written before it existed leave it out.
        return {
            k: v
            for k, v in asdict(self).items()
            if k in AUDITED and (v or k != "public_domain_override")
        }


def review_date(approved: date, months: int = 12) -> date:
    year, month = divmod(approved.month - 1 + months, 12)
    for day in (approved.day, 30, 29, 28):
        try:
            return approved.replace(year=approved.year + year, month=month + 1, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def checked(c: Contact, public: PublicDomains | None = None) -> Contact:
    """Validate a new or changed entry; returns it in stored form or raises ContactError
    (:class:`PublicDomainError` for a whole ``public`` domain without an override reason)."""
    for name in ("organisation", "approved_by", "verified_how"):
        if not getattr(c, name).strip():
            raise ContactError(f"{name.replace('_', ' ')} is required")
    try:
        approved, due = date.fromisoformat(c.approved_on), date.fromisoformat(c.review_due)
    except ValueError:
        raise ContactError("dates must be YYYY-MM-DD") from None
    if due <= approved:
        raise ContactError("review date must be after the approval date")
    if c.kind == "domain":
        addr = _parse("postmaster@" + c.address.strip(), "domain")
        if not addr.plain:
            raise ContactError(f"domain: {', '.join(addr.unusual) or 'not in normal form'}")
        source = (default_public_domains() if public is None else public).source(addr.domain)
        if source is not None and not c.public_domain_override.strip():
            raise PublicDomainError(addr.domain, source)
        return replace(
            c,
            address=addr.domain,
            unusual=False,
            public_domain_override=c.public_domain_override.strip() if source else "",
        )
    if not c.display_name.strip():
        raise ContactError("display name is required")
    addr = _parse(c.address, "address")
    if addr.unusual and not c.unusual:
        raise ContactError(
            f"address has an unusual form ({', '.join(addr.unusual)}); "
            "approve it exactly as written with --allow-unusual"
        )
    if addr.unusual:
        return c
    if addr.rewritten:
        raise ContactError("address is not in normal form")
    return replace(c, address=f"{addr.local}@{addr.domain}", unusual=False)


@functools.cache
def default_public_domains() -> PublicDomains:
    """The shipped list of public webmail and disposable-mail domains, read once."""
    return load_public_domains()


def _parse(text: str, what: str) -> Any:
    try:
        return normalise(text)
    except AddressSyntaxError as exc:
        raise ContactError(f"{what} is not valid: {exc}") from None
