"""Value types handed to filters. Filters see these, never aiosmtpd objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Session:
    """One client connection, as far as policy needs to know it."""

    peer: str  # client IP address
    helo: str = ""  # validated EHLO/HELO name ("" before EHLO)
    user: str = ""  # authenticated staff login ("" before AUTH)
    tls: bool = False


@dataclass
class Transaction:
    """One MAIL ... DATA transaction.

    ``annotations`` is where filters leave what they learned for later phases, the
    spool and the register (for example the disclosure metadata or, per recipient,
    the approved contact's organisation). Values must be JSON-serialisable because
    they are sealed into the spool with the message.
    """

    session: Session
    queue_id: str
    mail_from: str = ""
    rcpt_tos: list[str] = field(default_factory=list)
    annotations: dict[str, Any] = field(default_factory=dict)
