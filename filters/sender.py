"""Sender binding: staff send only as themselves (Postfix's reject_sender_login_mismatch).

MAIL FROM must be the authenticated login or one of its aliases (553 5.7.1, SPF-1).
At DATA the message must carry exactly one From: field holding exactly one mailbox,
parsed without defects by two independent parsers that agree, and that mailbox must be
the login or an alias; Sender:, Resent-From: and Resent-Sender:, when present, must be
too (550 5.7.1, SPF-2, HDR-4). Anything ambiguous is refused: a recipient's mail client
may show a different address from the one we checked (Chen et al., "Composition Kills",
USENIX Security 2020). So in every originator field (those and Reply-To:) group syntax
is refused (HDR-6), and so is a display name or comment that shows another address,
however its "@" is spelled (HDR-7).
"""

from __future__ import annotations

import email.utils
import functools
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from typing import Any

from gateway.directory.addresses import spelled_addresses
from gateway.directory.staff import StaffDirectory
from gateway.envelope import Transaction
from gateway.errors import Refused
from gateway.mail.headers import HeaderField, fields_named, header_fields
from gateway.pipeline import Content, FilterContext, checked_options

_registry = HeaderRegistry()


def create(options: dict[str, Any], context: FilterContext) -> SenderFilter:
    checked_options(context, "sender", options, ())
    return SenderFilter(StaffDirectory(context.store))


class SenderFilter:
    name = "sender"

    def __init__(self, staff: StaffDirectory) -> None:
        self.staff = staff

    def _owns(self, tx: Transaction, address: str) -> bool:
        member = self.staff.get(tx.session.user) if tx.session.user else None
        return member is not None and member.owns(address)

    async def on_mail(self, tx: Transaction) -> None:
        if not tx.mail_from or tx.mail_from == "<>":
            raise Refused(553, "5.7.1", "Staff mail needs your own address as sender, not <>")
        if not self._owns(tx, tx.mail_from):
            raise Refused(
                553,
                "5.7.1",
                f"Sender address {tx.mail_from} is not owned by user {tx.session.user}; "
                "send from your own address",
            )

    async def on_data(self, tx: Transaction, content: Content) -> Content:
        fields = header_fields(content)
        froms = fields_named(fields, "from")
        if len(froms) != 1:
            raise Refused(
                550, "5.7.1", f"Message must have exactly one From: header (found {len(froms)})"
            )
        address = _single_mailbox(froms[0], "From")
        if not self._owns(tx, address):
            raise Refused(
                550,
                "5.7.1",
                f"From: address is not owned by user {tx.session.user}; send from your own address",
            )
        # RFC 5322 3.6.2 and 3.6.6: who sent or re-sent it; each must be the staff member.
        for key, label in (
            ("sender", "Sender"),
            ("resent-from", "Resent-From"),
            ("resent-sender", "Resent-Sender"),
        ):
            for f in fields_named(fields, key):
                if not self._owns(tx, _single_mailbox(f, label)):
                    raise Refused(
                        550, "5.7.1", f"{label}: address is not owned by user {tx.session.user}"
                    )
        for f in fields_named(fields, "reply-to"):
            _check_reply_to(f)
        return content


# The same From: comes with every message of a staff member: read once (a field that is
# refused raises, which functools does not keep).
@functools.lru_cache(maxsize=512)
def _single_mailbox(field: HeaderField, label: str) -> str:
    bad = Refused(550, "5.7.1", f"{label}: header must hold exactly one plain address")
    if field.name != field.name.strip() or field.key != label.lower():
        raise bad  # "From :" and friends: obsolete syntax that parsers read differently
    try:
        value = field.value.decode("ascii")
    except UnicodeDecodeError:
        raise bad from None
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise bad
    header = _registry(label, value)
    _refuse_groups(header, label)
    mailboxes = [a for g in header.groups for a in g.addresses]  # type: ignore[attr-defined]
    if len(mailboxes) != 1 or not mailboxes[0].addr_spec:
        raise bad
    first = str(mailboxes[0].addr_spec)
    _refuse_other_shown(value, [first], label)
    if header.defects:
        raise bad
    # A second, older parser must read the same single address (CVE-2023-27043 shapes).
    others = email.utils.getaddresses([value])
    if len(others) != 1 or others[0][1].lower() != first.lower() or "@" not in first:
        raise bad
    return first


def _check_reply_to(field: HeaderField) -> None:
    """Reply-To: need not be the staff member's, but it is an originator field too."""
    try:
        value = field.value.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(550, "5.7.1", "Reply-To: header is not valid UTF-8") from None
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise Refused(550, "5.7.1", "Reply-To: header contains control characters")
    header = _registry("Reply-To", value)
    _refuse_groups(header, "Reply-To")
    named = [str(a.addr_spec) for g in header.groups for a in g.addresses]  # type: ignore[attr-defined]
    _refuse_other_shown(value, named, "Reply-To")


def _refuse_groups(header: Any, label: str) -> None:
    """HDR-6: a group ("Team: a@x, b@y;") in an originator field names no one person;
    RFC 5322 3.6.2 allows it in none of From, Sender and Reply-To for a sent message."""
    if any(g.display_name is not None for g in header.groups):
        raise Refused(
            550,
            "5.7.1",
            f"{label}: group syntax (name: addresses;) is not allowed in an originator "
            "field; write plain addresses",
        )


def _refuse_other_shown(value: str, named: list[str], label: str) -> None:
    """HDR-7: the text a mail client shows (encoded words decoded, names and comments)
    must spell no address but those the field names: '"boss＠c4f.example" <me@c4f>'
    reads as a message from boss."""
    try:
        shown = str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, ValueError):  # bad charset, bad bytes
        raise Refused(550, "5.7.1", f"{label}: header has an unreadable encoded word") from None
    mine = {a.lower() for a in named}
    if any(spelled.lower() not in mine for spelled in spelled_addresses(shown)):
        raise Refused(
            550,
            "5.7.1",
            f"{label}: the name shows an address other than the one it names; "
            "put only your name before <address>",
        )
