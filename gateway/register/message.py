"""What the register notes about a relayed message: Message-ID, subject and attachments.

Read from the exact bytes that are relayed (after every filter ran), so the attachment
digests describe what left the centre. Each attachment is noted with its name, type, size
and SHA-256; an image or video by the type its content shows (a video named ``notes.txt``
is noted as a video, with the type it was declared as). Parsing is lenient: a message the
parser cannot read is still recorded, by its SHA-256, with "(unreadable)" in place of the
details.

The values are those of Python's ``email`` parser (``policy.compat32``), but the parts are
found in place (:mod:`gateway.mail.parts`) and their bodies decoded in pieces into a size
and a digest (:mod:`gateway.mail.chunked`): a 25 MB attachment costs a few MiB, not the
parser's tree (about eight times the message). A structure the two could read differently
is parsed whole, as before.
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

from gateway.mail import chunked, media, parts
from gateway.mail.content import Content

log = structlog.get_logger("gateway.register")

UNREADABLE = "(unreadable)"


@dataclass(frozen=True)
class Summary:
    message_id: str = ""
    subject: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)


def summarise(content: Content) -> Summary:
    try:
        try:
            return _summary_in_place(content)
        except parts.Differs:
            return summary_parsed(content)
    except Exception as exc:  # hostile input must not stop the record (its hash is kept)
        log.warning("register_unreadable_message", error=type(exc).__name__)
        return Summary(message_id=UNREADABLE, subject=UNREADABLE)


def _summary_in_place(content: Content) -> Summary:
    """The parts found in place and their bodies decoded in pieces (a large attachment is
    never copied whole); the same values as :func:`summary_parsed`."""
    top, leaves = parts.leaves(content)
    attachments = []
    for leaf in leaves:
        body = _tally(content, leaf)
        if _is_attachment(leaf.headers, body.head):
            attachments.append(_noted(leaf.headers, body.head, body.size, body.sha256))
    return Summary(
        message_id=_header(top, "message-id"),
        subject=_header(top, "subject"),
        attachments=attachments,
    )


def _tally(content: Content, leaf: parts.Leaf) -> chunked.Tally:
    cte = str(leaf.headers.get("content-transfer-encoding", "")).lower()
    try:
        return chunked.tally(chunked.email_pieces(content, leaf.start, leaf.end, cte))
    except chunked.Unstreamable:  # damaged or unusual: decoded whole, as email does
        part = leaf.headers
        part.set_payload(content[leaf.start : leaf.end].decode("ascii", "surrogateescape"))
        return chunked.tally([_data(part)])


def summary_parsed(content: Content) -> Summary:
    """The summary read through ``email``'s parser: the whole message as a tree."""
    # compat32 is several times cheaper than policy.default here (no header objects);
    # the few values kept are decoded explicitly (RFC 2047).
    msg = BytesParser(policy=policy.compat32).parsebytes(content)
    attachments = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        data = _data(part)
        if _is_attachment(part, data):
            attachments.append(_noted(part, data, len(data), hashlib.sha256(data).hexdigest()))
    return Summary(
        message_id=_header(msg, "message-id"),
        subject=_header(msg, "subject"),
        attachments=attachments,
    )


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return _text(str(value)) if value is not None else ""


def _text(value: str) -> str:
    # An undecodable encoded word is kept as written.
    with contextlib.suppress(ValueError, LookupError, UnicodeError):
        value = str(make_header(decode_header(value)))
    return " ".join(value.split())


def _is_attachment(part: Message, head: bytes) -> bool:
    """``head``: the decoded body, or its first bytes (enough for media.sniff)."""
    if part.get_content_disposition() == "attachment" or part.get_filename() is not None:
        return True
    # A video is recorded even unnamed and inline (small inline images are logos).
    return part.get_content_maintype() == "video" or media.sniff(head).startswith("video/")


def _data(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _noted(part: Message, head: bytes, size: int, sha256: str) -> dict[str, Any]:
    declared = part.get_content_type()
    # An image or video is recorded as what its content is, whatever it was called.
    found = media.sniff(head)
    out: dict[str, Any] = {
        "name": _text(part.get_filename() or "") or "(no name)",
        "type": found or declared,
        "size": size,
        "sha256": sha256,
    }
    if found and found != declared:
        out["declared_type"] = declared
    return out
