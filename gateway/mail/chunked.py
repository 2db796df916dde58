"""A part's decoded body in pieces: its size, SHA-256 and first bytes without the whole
decoded body in memory (a 25 MB attachment is read about 1 MiB at a time, in place).

Two readings of a transfer encoding are offered, each giving exactly the bytes of the
whole-body decoder it stands for (only the pieces differ):

- :func:`strict_pieces`: :func:`gateway.mail.transfer.decode_body` (the filters' reading);
- :func:`email_pieces`: ``email.message.Message.get_payload(decode=True)`` under
  ``policy.compat32`` (what the register has always noted).

Damaged or unusual bodies (broken base64, uuencode, an unknown encoding) raise
:class:`Unstreamable` as soon as that is seen: the caller then decodes the whole body the
old way, so the result is the same, only not streamed.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Iterator

from gateway.mail import transfer
from gateway.mail.content import Content, bytes_of
from gateway.mail.mime import IDENTITY

CHUNK = 1 << 20
HEAD = 1024  # the first bytes kept: media.sniff reads up to byte 564

_LINE_BREAKS = b"\r\n"  # what the email package deletes (bytes.splitlines)
_UUENCODE = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})


class Unstreamable(Exception):
    """The body must be decoded whole (damaged or unusual): the pieces so far are void."""


class Tally:
    """Size, SHA-256 and the first :data:`HEAD` bytes of a body given in pieces."""

    def __init__(self) -> None:
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()

    def add(self, piece: bytes | memoryview) -> None:
        if len(self.head) < HEAD:
            self.head += bytes(piece[: HEAD - len(self.head)])
        self.size += len(piece)
        self._hash.update(piece)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def tally(pieces: Iterable[bytes | memoryview]) -> Tally:
    """The :class:`Tally` of the pieces (``[data]``: of a body decoded whole)."""
    out = Tally()
    for piece in pieces:
        out.add(piece)
    return out


def lines(buf: Content, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """``buf[start:end]`` in copies of about ``chunk`` bytes, each ending after a LF
    (or at ``end``): line-local decoders give the same bytes piece by piece."""
    pos = start
    while pos < end:
        cut = end
        if end - pos > chunk:
            lf = buf.find(b"\n", pos + chunk - 1, end)
            cut = end if lf < 0 else lf + 1
        yield bytes_of(buf, pos, cut)
        pos = cut


def strict_pieces(
    buf: Content, start: int, end: int, cte: str, chunk: int = CHUNK
) -> Iterator[bytes | memoryview]:
    """:func:`gateway.mail.transfer.decode_body` of ``buf[start:end]``, in pieces."""
    if cte in IDENTITY:
        yield memoryview(buf)[start:end]
    elif cte == "quoted-printable":
        for piece in lines(buf, start, end, chunk):  # quoted-printable is line-local
            yield transfer.decode_body(piece, cte)
    elif cte == "base64":
        yield from _base64(buf, start, end, transfer.B64_BLANKS, False, chunk)
    else:
        raise Unstreamable(cte)


def email_pieces(
    buf: Content, start: int, end: int, cte: str, chunk: int = CHUNK
) -> Iterator[bytes | memoryview]:
    """``get_payload(decode=True)`` (compat32) of a leaf whose body is ``buf[start:end]``;
    ``cte`` is ``str(part.get("content-transfer-encoding", "")).lower()``."""
    if cte == "quoted-printable":  # quopri.decodestring: binascii.a2b_qp, line by line
        for piece in lines(buf, start, end, chunk):
            yield binascii.a2b_qp(piece)
    elif cte == "base64":  # email._encoded_words.decode_b's first, strict, reading
        yield from _base64(buf, start, end, _LINE_BREAKS, True, chunk)
    elif cte in _UUENCODE:
        raise Unstreamable(cte)
    else:
        yield memoryview(buf)[start:end]


def _base64(
    buf: Content, start: int, end: int, delete: bytes, pad: bool, chunk: int
) -> Iterator[bytes]:
    """Strict base64 after deleting ``delete``, four characters at a time; with ``pad`` a
    short final group is padded with "=" as ``decode_b`` does."""
    carry = b""
    padded = False
    for piece in lines(buf, start, end, chunk):
        carry += piece.translate(None, delete)
        ready = len(carry) - len(carry) % 4
        if not ready:
            continue
        if padded:  # data after the padding: the whole reading fails
            raise Unstreamable("base64")
        yield _strict(carry[:ready])
        padded = carry[ready - 1 : ready] == b"="
        carry = carry[ready:]
    if carry:
        if padded or not pad:
            raise Unstreamable("base64")
        yield _strict(carry + b"==="[: 4 - len(carry)])


def _strict(text: bytes) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise Unstreamable("base64") from exc
