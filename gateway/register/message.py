"""What the register notes about a relayed message: Message-ID, subject and attachments.

Read from the exact bytes that are relayed (after every filter ran), so the attachment
digests describe what left the centre. Each attachment is noted with its name, type, size
and SHA-256; an image or video by the type its content shows (a video named ``notes.txt``
is noted as a video, with the type it was declared as). Parsing is lenient: a message the
parser cannot read is still recorded, by its SHA-256, with "(unreadable)" in place of the
details.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from typing import Any

import structlog

from gateway.mail import media

log = structlog.get_logger("gateway.register")

UNREADABLE = "(unreadable)"


@dataclass(frozen=True)
class Summary:
    message_id: str = ""
    subject: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)


def summarise(content: bytes) -> Summary:
    try:
        # compat32 is several times cheaper than policy.default here (no header objects);
        # the few values kept are decoded explicitly (RFC 2047).
        msg = BytesParser(policy=policy.compat32).parsebytes(content)
        attachments = [_attachment(part) for part in msg.walk() if _is_attachment(part)]
        return Summary(
            message_id=_header(msg, "message-id"),
            subject=_header(msg, "subject"),
            attachments=attachments,
        )
    except Exception as exc:  # hostile input must not stop the record (its hash is kept)
        log.warning("register_unreadable_message", error=type(exc).__name__)
        return Summary(message_id=UNREADABLE, subject=UNREADABLE)


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return _text(str(value)) if value is not None else ""


def _text(value: str) -> str:
    # An undecodable encoded word is kept as written.
    with contextlib.suppress(ValueError, LookupError, UnicodeError):
        value = str(make_header(decode_header(value)))
    return " ".join(value.split())


def _is_attachment(part: Message) -> bool:
    if part.is_multipart():
        return False
    if part.get_content_disposition() == "attachment" or part.get_filename() is not None:
        return True
    # A video is recorded even unnamed and inline (small inline images are logos).
    return part.get_content_maintype() == "video" or media.sniff(_data(part)).startswith("video/")


def _data(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _attachment(part: Message) -> dict[str, Any]:
    data = _data(part)
    declared = part.get_content_type()
    # An image or video is recorded as what its content is, whatever it was called.
    found = media.sniff(data)
    out: dict[str, Any] = {
        "name": _text(part.get_filename() or "") or "(no name)",
        "type": found or declared,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if found and found != declared:
        out["declared_type"] = declared
    return out
