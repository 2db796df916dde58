"""Shared by the held-message tests: send a message the approval policy holds, pick out
what arrived upstream for one address, and find a message's register record."""

from __future__ import annotations

from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage

from gateway.register.ledger import Register
from gateway.register.record import Record
from support.harness import RunningGateway, message
from support.upstream import Arrived


def queue_id(reply: str) -> str:
    """The ID in "250 2.0.0 Queued as ID[, held for approval...]"."""
    return reply.split("Queued as ")[1].split(",")[0].split()[0]


async def send_held(
    gw: RunningGateway, login: str, rcpts: Sequence[str], subject: str, attach: str = ""
) -> str:
    """Send as ``login``; assert the reply says held; return the queue ID."""
    msg = message(login, rcpts, subject=subject)
    if attach:
        msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=attach)
    errors, reply = await gw.send(login, rcpts, msg)
    assert errors == {} and "held for approval" in reply, reply
    return queue_id(reply)


def arrived_for(arrived: list[Arrived], address: str) -> list[Arrived]:
    return [a for a in arrived if a.rcpt_tos == [address]]


def notices(arrived: list[Arrived], address: str, subject: str) -> list[str]:
    """The gateway's notices to ``address`` whose Subject starts with ``subject``."""
    out = []
    for a in arrived_for(arrived, address):
        msg = message_from_bytes(a.content, policy=policy.default)
        if str(msg["Subject"] or "").startswith(subject):
            out.append(a.content.decode())
    return out


def record_of(gw: RunningGateway, qid: str) -> Record:
    reg = gw.gateway.register
    assert isinstance(reg, Register)
    [found] = [r for r in reg.records() if r.entry.queue_id == qid]
    return found


# A held message an approver must read safely: HTML only, with markup that must not run
# or become an element, text that must not show (a script's, the head's), an attachment.
PDF = b"%PDF-1.4\n% court bundle\n" + bytes(range(256)) * 4
HTML = (
    "<html><head><title>hidden title</title><style>p{color:red}</style></head><body>"
    "<p>Notes for the court &amp; the family&#39;s social worker.</p>"
    '<img src="x" onerror="alert(1)"><script>alert("script text")</script>'
    "<p>Shown as text: &lt;img src=x onerror=alert(2)&gt;</p></body></html>"
)


def html_message(sender: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "[consent:refused] [reason:Court order] Court notes"
    msg.set_content(HTML, subtype="html")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="bundle.pdf")
    return msg
