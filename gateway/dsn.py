"""Delivery status notifications (RFC 3464) sent back to the staff member.

The notice names the failed recipients and the upstream's reply. By default it carries
only the original's header fields (text/rfc822-headers), not the body: the body holds
family information that is already with the sender.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP

from gateway.headers import split_message


def build_bounce(
    *,
    hostname: str,
    queue_id: str,
    original_sender: str,
    failed: dict[str, str],  # recipient -> reply or reason
    original: bytes,
    include_body: bool,
    arrival: float,
) -> bytes:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{hostname}>"
    report["To"] = original_sender
    report["Subject"] = "Undelivered message: not sent to some recipients"
    report["Date"] = email.utils.formatdate()
    report["Message-ID"] = email.utils.make_msgid(domain=hostname)
    report["Auto-Submitted"] = "auto-replied"
    lines = [
        f"Your message (queue ID {queue_id}) could not be delivered to:",
        "",
        *[f"  {rcpt}: {reply}" for rcpt, reply in failed.items()],
        "",
        "Nothing more will be tried for these recipients. Check each address and send "
        "again, or ask an admin if you believe the address is right.",
    ]
    report.attach(MIMEText("\n".join(lines) + "\n", "plain", "utf-8"))
    status = MIMEBase("message", "delivery-status")
    per_message = (
        f"Reporting-MTA: dns; {hostname}\r\nX-Queue-ID: {queue_id}\r\n"
        f"Arrival-Date: {email.utils.formatdate(arrival)}\r\n"
    )
    per_rcpt = "".join(
        f"\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\n"
        f"Status: {_status_of(reply)}\r\nDiagnostic-Code: smtp; {_one_line(reply)}\r\n"
        for rcpt, reply in failed.items()
    )
    status.set_payload(per_message + per_rcpt)
    report.attach(status)
    if include_body:
        part = MIMEBase("message", "rfc822")
        part.set_payload(original.decode("utf-8", "surrogateescape"))
    else:
        fields, _ = split_message(original)
        part = MIMEBase("text", "rfc822-headers")
        part.set_payload(b"".join(f.raw for f in fields).decode("utf-8", "replace"))
    report.attach(part)
    return _as_bytes(report)


def _as_bytes(msg: EmailMessage | MIMEMultipart) -> bytes:
    return msg.as_bytes(policy=SMTP)


def _status_of(reply: str) -> str:
    parts = reply.split()
    for p in parts[:2]:
        if p.count(".") == 2 and p[0] in "45" and p.replace(".", "").isdigit():
            return "5" + p[1:]  # a final failure is reported as permanent
    return "5.0.0"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:900]
