"""Byte-exact access to a message's header section.

The gateway relays the exact bytes it was given apart from the changes policy makes,
so header edits (removing Bcc:, adding Received:) work on the raw fields instead of
re-serialising through ``email``, which can re-fold or re-encode what it touches.
Input is CRLF-terminated (the SMTP layer refuses bare CR and LF before this runs).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.mail.content import Content, bytes_of

CRLF = b"\r\n"


class MalformedHeader(ValueError):
    """The header section cannot be split into fields safely."""


@dataclass(frozen=True)
class HeaderField:
    name: bytes  # as written, without the colon
    raw: bytes  # the whole field: first line, continuation lines, final CRLF

    @functools.cached_property
    def key(self) -> str:
        """The field name for comparisons: blanks removed, lower case."""
        return self.name.strip().decode("ascii", "replace").lower()

    @property
    def value(self) -> bytes:
        """The unfolded value without the name, colon and final CRLF."""
        _, _, rest = self.raw.partition(b":")
        return rest.replace(CRLF + b" ", b" ").replace(CRLF + b"\t", b"\t").rstrip(b"\r\n")


def split_message(content: Content) -> tuple[list[HeaderField], bytes]:
    """Split into header fields and the body (the bytes after the blank line).

    A message with no blank line is all header and has an empty body.
    """
    head, body_start = _header_section(content)
    return _fields(head), bytes_of(content, body_start, len(content))


def header_fields(content: Content) -> list[HeaderField]:
    """The header fields of :func:`split_message`, without copying the body (a filter that
    reads only header fields of a 25 MB message need not copy 25 MB)."""
    return _fields(_header_section(content)[0])


def body_start(content: Content) -> int:
    """Where :func:`split_message`'s body starts in ``content``."""
    return _header_section(content)[1]


def _header_section(content: Content) -> tuple[bytes, int]:
    """The header section (CRLF-terminated, always bytes) and where the body starts."""
    if content.startswith(CRLF):
        return b"", 2
    end = content.find(CRLF + CRLF)
    if end < 0:
        head = bytes_of(content, 0, len(content))
        if head and not head.endswith(CRLF):
            head += CRLF
        return head, len(content)
    return bytes_of(content, 0, end + 2), end + 4


# Every filter reads the header fields of the same message: a header section up to this
# size is split once (the fields are immutable; each caller gets its own list of them).
_CACHED_HEAD = 64 * 1024


def _fields(head: bytes) -> list[HeaderField]:
    if len(head) <= _CACHED_HEAD:
        return list(_split_cached(head))
    return _split(head)


@functools.lru_cache(maxsize=32)
def _split_cached(head: bytes) -> tuple[HeaderField, ...]:
    return tuple(_split(head))


def _split(head: bytes) -> list[HeaderField]:
    fields: list[HeaderField] = []
    lines = head.split(CRLF)[:-1] if head else []
    current: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not current:
                raise MalformedHeader("continuation line before the first header field")
            current.append(line)
            continue
        if current:
            fields.append(_field(current))
        current = [line]
    if current:
        fields.append(_field(current))
    return fields


def _field(lines: list[bytes]) -> HeaderField:
    first = lines[0]
    name, colon, _ = first.partition(b":")
    if not colon or not name.strip():
        raise MalformedHeader("header line without a field name and colon")
    if name != name.rstrip(b" \t"):
        # RFC 5322 4.5's obsolete syntax allows it, but readers disagree: Python's email
        # package, for one, reads the header section from there on as body text (HDR-8).
        raise MalformedHeader("a blank between a header field name and its colon")
    if any(c < 33 or c > 126 for c in name):
        raise MalformedHeader("header field name with invalid characters")
    return HeaderField(name=name, raw=CRLF.join(lines) + CRLF)


def fields_named(fields: Iterable[HeaderField], key: str) -> list[HeaderField]:
    return [f for f in fields if f.key == key]


def without(fields: Iterable[HeaderField], *keys: str) -> list[HeaderField]:
    return [f for f in fields if f.key not in keys]


# RFC 5322 3.6: the fields a message may carry at most once. With two, one reader shows
# the first and another the last, so what was checked need not be what is seen (HDR-5).
SINGLETONS = frozenset(
    "date from sender reply-to to cc bcc message-id in-reply-to references subject".split()  # noqa: SIM905 (word list)
)


def repeated_singletons(fields: Iterable[HeaderField]) -> list[str]:
    """The singleton fields that appear more than once, named as first written."""
    first: dict[str, str] = {}
    repeated: list[str] = []
    for f in fields:
        if f.key not in SINGLETONS:
            continue
        if f.key not in first:
            first[f.key] = f.name.strip().decode("ascii", "replace")
        elif first[f.key] not in repeated:
            repeated.append(first[f.key])
    return repeated
