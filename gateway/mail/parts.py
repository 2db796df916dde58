"""The leaf parts of a message as Python's ``email`` parser (``policy.compat32``) finds
them, read in place: where each body lies in the message's bytes, with ``email``'s own
reading of that part's header section.

The structure comes from the byte-level walker (:mod:`gateway.mail.mime`), which builds
no tree of copies; each part's header section is also read by ``email``'s header parser
(small), and every point where the two could read the structure differently is checked:
the content type, the boundary, a forwarded message (``message/rfc822``, opened as
``email`` opens it). When they could differ, or the walker refuses the structure (a
missing close delimiter, an ambiguous boundary), :class:`Differs` is raised and the caller
parses the message with ``email`` as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from gateway.mail import mime
from gateway.mail.content import Content, bytes_of
from gateway.mail.headers import HeaderField, MalformedHeader, header_fields
from gateway.mail.mime import Entity, MimeError
from gateway.mail.wire import has_bare_line_end_or_nul

MAX_NESTED = 10  # forwarded messages inside forwarded messages, opened in place


class Differs(Exception):
    """``email`` may read this structure differently from the walker: parse it whole."""


@dataclass(frozen=True)
class Leaf:
    headers: Message  # email's reading of the part's header section (no payload)
    start: int  # the body: buf[start:end], as email's payload
    end: int


def leaves(content: Content) -> tuple[Message, list[Leaf]]:
    """The message's own header fields and its leaf parts, in ``Message.walk`` order.

    Raises :class:`Differs`."""
    try:
        root = mime.parse(content)
    except MimeError as exc:
        raise Differs(exc.slug) from exc
    out: list[Leaf] = []
    top = _visit(content, root, "text/plain", 0, out)
    return top, out


def _headers(buf: Content, e: Entity) -> Message:
    head = bytes_of(buf, e.start, e.body_start if e.separated else e.end)
    fields = _shared_split(head)
    if fields is None:
        return BytesHeaderParser(policy=policy.compat32).parsebytes(head)
    # Each field given to the Message as email's parser gives it, without running the
    # parser over the section again.
    m = Message(policy=policy.compat32)
    for f in fields:
        lines = f.raw.decode("ascii", "surrogateescape").split("\r\n")[:-1]
        m.set_raw(*policy.compat32.header_source_parse([line + "\r\n" for line in lines]))
    return m


def _shared_split(head: bytes) -> list[HeaderField] | None:
    """The fields every filter shares (:func:`header_fields`), for a CRLF-clean, well-formed
    section; None for any other, which email's parser reads."""
    if has_bare_line_end_or_nul(head):  # not as SMTP takes it: a console's or a test's
        return None
    try:
        return header_fields(head)
    except MalformedHeader:
        return None


def _visit(buf: Content, e: Entity, default: str, nested: int, out: list[Leaf]) -> Message:
    m = _headers(buf, e)
    if default != "text/plain":
        m.set_default_type(default)
    kind = m.get_content_type()
    if kind != e.ctype:
        raise Differs("content-type")
    if e.maintype == "multipart":
        if m.get_boundary() != e.boundary or not e.children:
            raise Differs("boundary")
        child_default = "message/rfc822" if kind == "multipart/digest" else "text/plain"
        for child in e.children:
            _visit(buf, child, child_default, nested, out)
    elif e.maintype == "message":
        # email opens every message/* part as a message, whatever its encoding.
        if kind != "message/rfc822" or nested >= MAX_NESTED:
            raise Differs("message")
        try:
            inner = mime.parse_span(buf, e.body_start, e.end)
        except MimeError as exc:
            raise Differs(exc.slug) from exc
        _visit(buf, inner, "text/plain", nested + 1, out)
    else:
        out.append(Leaf(m, e.body_start, e.end))
    return m
