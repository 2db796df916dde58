"""Content-Transfer-Encodings (RFC 2045 6.7, 6.8): decoding a body, encoding new text, and
re-encoding an edited body so that its unchanged lines stay byte-identical.
"""

from __future__ import annotations

import binascii
import re

from gateway.mail.mime import CRLF, IDENTITY, MimeError

_TRAILING_WS = re.compile(rb"[ \t]+(?=\r\n|\Z)")
B64_BLANKS = b" \t\r\n"  # deleted before strict decoding (bytes.translate: C speed)


def decode_body(body: bytes, cte: str) -> bytes:
    if cte in IDENTITY:
        return body
    if cte == "quoted-printable":
        # RFC 2045 6.7 (3): trailing blanks on an encoded line are not data.
        return binascii.a2b_qp(_TRAILING_WS.sub(b"", body))
    if cte == "base64":
        try:
            return binascii.a2b_base64(body.translate(None, B64_BLANKS), strict_mode=True)
        except binascii.Error as exc:
            raise MimeError("bad-base64", "a text part has invalid base64") from exc
    raise MimeError("unknown-encoding", "a text part has an unknown transfer encoding")


def qp_encode(data: bytes) -> bytes:
    """Quoted-printable with CRLF hard breaks and lines of at most 76 characters."""
    lines = data.split(CRLF)
    out = [binascii.b2a_qp(line, istext=False).replace(b"=\n", b"=\r\n") for line in lines]
    return CRLF.join(out)


def b64_encode(data: bytes, width: int = 76) -> bytes:
    raw = binascii.b2a_base64(data, newline=False)
    return CRLF.join(raw[i : i + width] for i in range(0, len(raw), width)) + CRLF


def encode_body(data: bytes, cte: str, width: int = 76) -> bytes:
    if cte in IDENTITY:
        return data
    if cte == "quoted-printable":
        return qp_encode(data)
    return b64_encode(data, width)


def splice_encoded(body: bytes, cte: str, old: bytes, new: bytes) -> bytes:
    """Encode ``new`` in ``cte`` reusing the encoded lines of ``body`` (which decodes to
    ``old``) up to the first change, so the diff shows only what changed."""
    if cte in IDENTITY:
        return new  # the body is ``old`` itself: nothing of it to keep that ``new`` lacks
    width = b64_width(body) if cte == "base64" else 76
    same = common_prefix(old, new)
    keep, decoded = _reusable_lines(body, cte, same)
    tail = encode_body(new[decoded:], cte, width)
    if cte == "quoted-printable" and not new.endswith(CRLF) and body.endswith(CRLF):
        tail += b"=" + CRLF  # keep the final line break as a soft one: it carries no data
    result = body[:keep] + tail
    if decode_body(result, cte) != new:  # unusual line layout: encode it all afresh
        result = encode_body(new, cte, width)
    return result


def _reusable_lines(body: bytes, cte: str, limit: int) -> tuple[int, int]:
    """The longest run of whole encoded units from the start that decodes, on its own, to at
    most ``limit`` bytes: (encoded length, decoded length). A base64 unit is a line without
    padding; a quoted-printable unit is a hard line with the soft-broken lines before it."""
    keep = decoded = pending = 0
    pos = 0
    while True:
        eol = body.find(CRLF, pos)
        if eol < 0:
            return keep, decoded
        line = body[pos:eol]
        pos = eol + 2
        if cte == "base64":
            if len(line) % 4 or b"=" in line:
                return keep, decoded
            pending = len(line) // 4 * 3
        else:
            stripped = line.rstrip(b" \t")
            if stripped.endswith(b"="):  # a soft line break: the unit goes on
                pending += len(binascii.a2b_qp(stripped[:-1]))
                continue
            pending += len(binascii.a2b_qp(stripped)) + 2
        if decoded + pending > limit:
            return keep, decoded
        keep, decoded, pending = pos, decoded + pending, 0


def b64_width(body: bytes) -> int:
    """The line width of an encoded body, to write new lines alike (76 when unclear)."""
    first, sep, rest = body.partition(CRLF)
    if sep and rest.strip() and 4 <= len(first) <= 76 and len(first) % 4 == 0:
        return len(first)
    return 76


def common_suffix(
    a: bytes | bytearray, b: bytes | bytearray, limit: int, chunk: int = 65536
) -> int:
    """Length of the common suffix, at most ``limit``: as :func:`common_prefix`, from the
    end (no reversed copies of the whole of ``a`` and ``b``)."""
    n = min(len(a), len(b), limit)
    ea, eb = len(a), len(b)
    pos = 0  # a[ea - pos :] == b[eb - pos :]
    while pos < n:
        step = min(chunk, n - pos)
        if a[ea - pos - step : ea - pos] != b[eb - pos - step : eb - pos]:
            break
        pos += step
    lo, hi = pos, min(pos + chunk, n)  # the last lo octets agree; the last hi may not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[ea - mid : ea - lo] == b[eb - mid : eb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def common_prefix(a: bytes | bytearray, b: bytes | bytearray, chunk: int = 65536) -> int:
    """Length of the common prefix: chunk comparisons, then bisection (all at C speed)."""
    n = min(len(a), len(b))
    pos = 0
    while pos < n and a[pos : pos + chunk] == b[pos : pos + chunk]:
        pos += chunk
    lo, hi = min(pos, n), min(pos + chunk, n)  # a[:lo] == b[:lo]; a differs at or before hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
