"""Short notices the gateway itself mails to staff: a message held, refused, expired, a
daily reminder of messages waiting for approval.

A notice never quotes the message it is about (no subject, no recipients, no body): it
names the queue ID and says what happened and what to do. It comes from the address in
``[notices] from`` (``Settings.notices_from``), in its From: and as its reverse-path (RFC
5321 4.5.5: only a DSN goes out with a null one), so a smarthost such as Microsoft 365
relays it for the gateway's login; it is marked ``Auto-Submitted: auto-generated``
(RFC 3834) so no auto-responder answers it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence

from gateway.mail.headers import CRLF


def build_notice(
    *,
    hostname: str,
    sender: str,
    to: Sequence[str],
    subject: str,
    lines: Sequence[str],
    at: float | None = None,
) -> bytes:
    """The notice's exact bytes: plain text, UTF-8, CRLF line ends, from ``sender``."""
    fields = [
        f"From: c4f-gateway <{sender}>",
        f"To: {', '.join(to)}",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(time.time() if at is None else at)}",
        f"Message-ID: {email.utils.make_msgid('notice', domain=hostname)}",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    for f in fields:
        if "\r" in f or "\n" in f:
            raise ValueError("a notice header field must be one line")
    body = "\r\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines)
    return ("\r\n".join(fields) + "\r\n\r\n" + body).encode("utf-8") + CRLF
