"""Sender binding: staff send only as themselves (Postfix's reject_sender_login_mismatch).

MAIL FROM must be the authenticated login or one of its aliases (553 5.7.1, SPF-1).
At DATA the message must carry exactly one From: field holding exactly one mailbox,
parsed without defects by two independent parsers that agree, and that mailbox must be
the login or an alias; Sender: and Resent-From:, when present, must be too (550 5.7.1,
SPF-2). Anything ambiguous is refused: a recipient's mail client may show a different
address from the one we checked (Chen et al., "Composition Kills", USENIX Security 2020).
"""

from __future__ import annotations

import email.utils
from email.headerregistry import HeaderRegistry
from typing import Any

from gateway.directory.staff import StaffDirectory
from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.mail.headers import HeaderField, fields_named, split_message
from gateway.pipeline import FilterContext

_registry = HeaderRegistry()


def create(options: dict[str, Any], context: FilterContext) -> SenderFilter:
    if options:
        raise ConfigError(f"filter.sender: unknown option(s): {', '.join(sorted(options))}")
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

    async def on_data(self, tx: Transaction, content: bytes) -> bytes:
        fields, _ = split_message(content)
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
        for key, label in (("sender", "Sender"), ("resent-from", "Resent-From")):
            for f in fields_named(fields, key):
                if not self._owns(tx, _single_mailbox(f, label)):
                    raise Refused(
                        550, "5.7.1", f"{label}: address is not owned by user {tx.session.user}"
                    )
        return content


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
    mailboxes = [a for g in header.groups for a in g.addresses]  # type: ignore[attr-defined]
    if header.defects or len(mailboxes) != 1 or not mailboxes[0].addr_spec:
        raise bad
    first = str(mailboxes[0].addr_spec)
    # A second, older parser must read the same single address (CVE-2023-27043 shapes).
    others = email.utils.getaddresses([value])
    if len(others) != 1 or others[0][1].lower() != first.lower() or "@" not in first:
        raise bad
    if "@" in mailboxes[0].display_name:
        raise bad  # '"me@ours" <x@evil>': the name looks like an address
    return first
