"""Every recipient must be an approved, unexpired contact (or one of the centre's own).

Policy: "The email address to which is being sent to will be carefully checked."
Checked on every RCPT TO and on every address in To/Cc (and Resent-To/Resent-Cc) at
DATA: a header address nobody approved is refused too, because reply-all would send to
it. Addresses are judged by :mod:`gateway.directory.addresses` (no DNS at send time); unusual shapes
pass only when approved exactly as written, and an address whose normal form differs
from what was given is refused rather than rewritten (REL-3). Case and a ``+tag`` do not
make another mailbox: ``PERSON+tag@domain`` is judged by the entry of ``person@domain``
when it has none of its own (REL-5). A refused address that resembles an approved one
gets a masked hint, at most ``hint_limit_per_day`` per staff member; past that the
generic reply is used and the event is flagged for the line manager. All-or-nothing
(554 at DATA) is the relay core's job.
"""

from __future__ import annotations

import secrets
from typing import Any, NoReturn

import structlog

from gateway.directory import public_domains
from gateway.directory.addresses import (
    Address,
    AddressSyntaxError,
    AmbiguousHeader,
    header_addresses,
    normalise,
)
from gateway.directory.contact import Contact
from gateway.directory.contact_cache import ContactCache, Snapshot
from gateway.directory.contacts_sealed import keyring_for
from gateway.directory.lookalike import mask
from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.mail.headers import header_fields
from gateway.pipeline import Content, FilterContext, checked_options

log = structlog.get_logger("filters.contacts")

RECIPIENT_HEADERS = ("to", "cc", "resent-to", "resent-cc")
DEFAULT_HINT_LIMIT = 5


def create(options: dict[str, Any], context: FilterContext) -> ContactsFilter:
    checked_options(context, "contacts", options, ("hint_limit_per_day", public_domains.OPTION))
    limit = options.get("hint_limit_per_day", DEFAULT_HINT_LIMIT)
    # Read by `contacts add`/`import` and the console; loaded here so check-config and
    # serve stop on a file that cannot be read.
    public_domains.load(public_domains.local_file(options, context.settings.base_dir))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError("filter.contacts: hint_limit_per_day: expected a whole number >= 0")
    internal = frozenset(d.lower() for d in context.settings.organisation.domains)
    cache = ContactCache(context.store, keyring_for(context.settings))
    return ContactsFilter(cache, internal, limit)


class ContactsFilter:
    name = "contacts"

    def __init__(self, cache: ContactCache, internal: frozenset[str], hint_limit: int) -> None:
        self.cache = cache
        self.repo = cache.repo
        self.internal = internal
        self.hint_limit = hint_limit

    async def on_rcpt(self, tx: Transaction, address: str) -> None:
        self.judge(tx, address)

    async def on_data(self, tx: Transaction, content: Content) -> Content:
        fields = header_fields(content)
        try:
            addresses = header_addresses(f for f in fields if f.key in RECIPIENT_HEADERS)
        except AmbiguousHeader as exc:
            self._refuse(
                tx,
                "",
                550,
                "5.7.1",
                "ambiguous_header",
                f"{exc}; write each recipient as name <address>",
            )
        for address in addresses:
            self.judge(tx, address, header=True)
        return content

    def judge(self, tx: Transaction, address: str, *, header: bool = False) -> None:
        """Approve ``address`` (recording what was learnt in ``tx.annotations``) or raise."""
        where = "To/Cc header: " if header else ""
        snap = self.cache.current()
        exact = snap.exact.get(address)  # an unusual shape approved exactly as written
        if exact is not None:
            return self._approve(tx, address, exact, header)
        try:
            addr = normalise(address)
        except AddressSyntaxError as exc:
            self._refuse(
                tx,
                address,
                553,
                "5.1.3",
                "bad_syntax",
                f"{where}Recipient address is not valid: {exc}",
            )
        if addr.unusual:
            self._refuse(
                tx,
                address,
                550,
                "5.7.1",
                "unusual_form",
                f"{where}Recipient address has an unusual form "
                f"({', '.join(addr.unusual)}); it is accepted only when approved "
                "exactly as written",
                hint=(snap, addr),
            )
        if addr.rewritten:
            self._refuse(
                tx,
                address,
                553,
                "5.1.3",
                "not_normal_form",
                f"{where}Recipient address is not in normal form; write it plainly",
            )
        if addr.domain in self.internal:
            # Staff-to-staff mail stays inside the centre: no contact entry needed.
            _annotate(
                tx, address, {"internal": True, "header_only": _header_only(tx, address, header)}
            )
            return None
        entry = snap.by_key.get(addr.key) or snap.domains.get(addr.domain)
        # REL-5: "person+tag" reaches person's mailbox, so person's entry judges it first
        # (expired or fax-flagged: refused; requires approval: held). It does not approve
        # the sub-address by itself: that still takes an entry of its own or the domain's.
        mailbox = snap.mailbox_of(addr)
        if mailbox is not None:
            self._check(tx, address, mailbox, header)
        if entry is None:
            self._refuse(
                tx,
                address,
                550,
                "5.7.1",
                "not_approved",
                f"{where}Recipient is not an approved contact; check the address, "
                "or ask an admin to approve it",
                hint=(snap, addr),
            )
        return self._approve(tx, address, entry, header, mailbox)

    def _approve(
        self,
        tx: Transaction,
        address: str,
        entry: Contact,
        header: bool,
        mailbox: Contact | None = None,
    ) -> None:
        """Check ``entry``, the one that lets ``address`` in, and record who it reaches:
        the ``mailbox`` entry (already checked) when it has one, else ``entry`` itself."""
        self._check(tx, address, entry, header)
        judged = mailbox or entry
        record: dict[str, Any] = {
            "contact_id": judged.ref,
            "organisation": judged.organisation,
            "display_name": judged.display_name,
            "match": judged.kind,
            "header_only": _header_only(tx, address, header),
        }
        if judged.requires_approval:
            record["requires_approval"] = True  # filters/approval.py holds the message
        _annotate(tx, address, record)

    def _check(self, tx: Transaction, address: str, entry: Contact, header: bool) -> None:
        """Refuse ``address`` when ``entry`` has lapsed or DNS says it is a fax route."""
        where = "To/Cc header: " if header else ""
        today = self.repo.today()
        if entry.expired(today):
            self._refuse(
                tx,
                address,
                550,
                "5.7.1",
                "expired",
                f"{where}Approval of contact {entry.ref} expired on "
                f"{entry.review_due}; ask an admin to review it",
                contact=entry,
            )
        if entry.mx_flag:
            self._refuse(
                tx,
                address,
                550,
                "5.7.1",
                "fax_mx",
                f"{where}Mail for contact {entry.ref} is handled by a fax service "
                "(DNS check); sending by fax is not permitted; ask an admin to "
                "review it",
                contact=entry,
            )

    def _refuse(
        self,
        tx: Transaction,
        address: str,
        code: int,
        enhanced: str,
        reason: str,
        text: str,
        *,
        hint: tuple[Snapshot, Address] | None = None,
        contact: Contact | None = None,
    ) -> NoReturn:
        reference = "R-" + secrets.token_hex(2).upper()
        record: dict[str, Any] = {"refused": reason, "reference": reference, "code": code}
        if contact is not None:
            record["contact_id"] = contact.ref
        if hint is not None:
            said = self._hint(tx, hint[0], hint[1], record, reference)
            if said:
                text += f"; {said}"
        if address:
            _annotate(tx, address, record)
        log.info(
            "recipient_refused",
            reason=reason,
            address=mask(address),
            reference=reference,
            queue_id=tx.queue_id,
            staff=tx.session.user,
            flag=record.get("flag"),
        )
        raise Refused(code, enhanced, text, reference=reference)

    def _hint(
        self, tx: Transaction, snap: Snapshot, addr: Address, record: dict[str, Any], reference: str
    ) -> str:
        if not tx.session.user or self.hint_limit == 0:
            return ""  # hints go only to authenticated staff
        found = snap.lookalikes.find(addr.local, addr.domain, addr.unicode_domain)
        if found is None:
            return ""
        ref = f"C-{found.contact_id:03d}"
        record["resembles"] = ref
        record["resemblance"] = found.reason
        if not self.repo.take_hint(tx.session.user, self.hint_limit):
            # Many near-misses in one day: maybe probing the contact list. Say nothing
            # more; flag it for the line manager (the register records the annotation).
            record["flag"] = "hint_limit_reached"
            log.warning(
                "lookalike_hint_limit_reached",
                staff=tx.session.user,
                queue_id=tx.queue_id,
                reference=reference,
                limit=self.hint_limit,
            )
            return ""
        return f"resembles approved contact {ref} ({found.masked})"


def _header_only(tx: Transaction, address: str, header: bool) -> bool:
    return header and address.lower() not in {r.lower() for r in tx.rcpt_tos}


def _annotate(tx: Transaction, address: str, record: dict[str, Any]) -> None:
    recipients: dict[str, Any] = tx.annotations.setdefault("recipients", {})
    if record.get("header_only") is False and address in recipients:
        return  # already recorded at RCPT; the header repeats an envelope recipient
    recipients[address] = record
