"""Delivery status notifications (RFC 3464) sent back to the staff member.

The notice names the failed recipients and the upstream's reply. By default it carries
only the original's header fields (text/rfc822-headers, RFC 6522), not the body: the body
holds family information that is already with the sender ("Storage of information").
Its From: is ``[notices] from`` (a smarthost relays only an address the gateway's login
may send as); its reverse-path stays null (RFC 3464 2, RFC 5321 4.5.5).

The MIME is written here byte by byte: the email package cannot serialise a
message/rfc822 part holding 8-bit bytes, and the original must come back unchanged.
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Mapping

from gateway.mail.content import Content
from gateway.mail.headers import header_fields

# An RFC 3463 status code as the second word of a reply ("550 5.1.1 ...").
_ENHANCED = re.compile(r"^\d{3}[ -]([245])\.(\d{1,3}\.\d{1,3})\b")


def build_bounce(
    *,
    hostname: str,
    sender: str,
    queue_id: str,
    original_sender: str,
    failed: Mapping[str, tuple[str, str]],  # recipient -> (RFC 3463 status, diagnostic)
    original: Content,
    include_body: bool,
    arrival: float,
) -> bytes:
    text = "\r\n".join(
        [
            f"Your message (queue ID {queue_id}) could not be delivered to:",
            "",
            *[f"  {rcpt}: {_one_line(diag)}" for rcpt, (_, diag) in failed.items()],
            "",
            "Nothing more will be tried for these recipients. Check each address and send",
            "again, or ask an admin if you believe the address is right.",
            "",
        ]
    ).encode("utf-8")
    # RFC 3464 2.1: one block of per-message fields, then one block per recipient.
    blocks = [
        f"Reporting-MTA: dns; {hostname}\r\nX-Queue-ID: {queue_id}\r\n"
        f"Arrival-Date: {email.utils.formatdate(arrival)}\r\n"
    ]
    blocks += [
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {code}\r\n"
        f"Diagnostic-Code: smtp; {_one_line(diag)}\r\n"
        for rcpt, (code, diag) in failed.items()
    ]
    status = "\r\n".join(blocks).encode("utf-8")
    if include_body:
        returned, returned_type = original, "message/rfc822"
    else:
        fields = header_fields(original)
        returned, returned_type = b"".join(f.raw for f in fields), "text/rfc822-headers"
    parts: list[tuple[str, Content]] = [
        (f"text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {_cte(text)}", text),
        ("message/delivery-status", status),
        (returned_type, returned),
    ]
    boundary = _boundary([body for _, body in parts])
    head = (
        f"From: Mail Delivery System <{sender}>\r\n"
        f"To: <{original_sender}>\r\n"
        "Subject: Undelivered message: not sent to some recipients\r\n"
        f"Date: {email.utils.formatdate(localtime=True)}\r\n"
        f"Message-ID: {email.utils.make_msgid(domain=hostname)}\r\n"
        "Auto-Submitted: auto-replied\r\n"  # RFC 3834 5: nobody auto-replies to this
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
    ).encode()
    out: list[Content] = [head]
    for content_type, body in parts:
        out.append(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        out.append(body if body.endswith(b"\r\n") else body + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def permanent_status(reply: str) -> str:
    """The RFC 3463 status for a recipient that failed for good: the reply's own code,
    made permanent (a 4.x.x reply can end in a bounce at the maximum age), else 5.0.0."""
    m = _ENHANCED.match(reply)
    return f"5.{m[2]}" if m else "5.0.0"


def _boundary(bodies: list[Content]) -> str:
    while True:  # RFC 2046 5.1.1: the boundary must not occur in any part
        boundary = f"=_dsn_{secrets.token_hex(12)}"
        if not any(boundary.encode() in body for body in bodies):
            return boundary


def _cte(body: bytes) -> str:
    return "7bit" if body.isascii() else "8bit"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:900]
