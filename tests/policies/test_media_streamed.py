"""The media filter decodes each part in pieces (size, SHA-256, first bytes), reads a
whole body only for a JPEG's or TIFF's EXIF block and opens a forwarded message in place:
its findings are those of decoding every part whole, on generated messages with
photographs, videos, logos, damaged base64, unknown encodings and forwarded messages
(as they are, or base64-encoded).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import quopri

from hypothesis import given, settings
from hypothesis import strategies as st
from test_media import camera_jpeg, mp4, png

from filters.media import MAX_NESTED, Found, _decoded, find_media
from gateway.mail import mime
from gateway.mail.media import camera, is_media, sniff
from gateway.mail.mime import MimeError

CRLF = b"\r\n"
LIMIT = 20 * 1024


def whole_body_findings(content: bytes, depth: int = 0) -> list[Found]:
    """The filter's findings worked out with every body decoded whole and every forwarded
    message copied out and parsed on its own (the oracle)."""
    out: list[Found] = []
    for e, related in _leaves(mime.parse(content), False):
        data = _decoded(content[e.body_start : e.end], e.cte)
        if e.ctype == "message/rfc822" and depth < MAX_NESTED:
            with contextlib.suppress(MimeError):
                out.extend(whole_body_findings(data, depth + 1))
        name = e.disposition_params.get("filename") or e.params.get("name") or ""
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        by_name = {"jpg": "image/jpeg", "mp4": "video/mp4", "png": "image/png"}.get(ext, "")
        if sniff(data):
            by, ctype = "content", sniff(data)
        elif is_media(e.ctype):
            by, ctype = "type", e.ctype
        elif by_name:
            by, ctype = "name", by_name
        else:
            continue
        taken_by = camera(data)
        sha = hashlib.sha256(data).hexdigest()
        name = taken_by.name if taken_by else ""
        found = Found(ctype, len(data), sha, taken_by is not None, by, name)
        small = related and e.disposition != "attachment" and found.size <= LIMIT
        if not (small and ctype.startswith("image/") and not found.camera):
            out.append(found)
    return out


def _leaves(e: mime.Entity, related: bool) -> list[tuple[mime.Entity, bool]]:
    if not e.children:
        return [(e, related)]
    inner = related or e.ctype == "multipart/related"
    return [leaf for child in e.children for leaf in _leaves(child, inner)]


PAYLOADS = st.sampled_from(
    [camera_jpeg(), mp4(3000), png(500), png(30_000), b"%PDF-1.7\n" + bytes(900), b"hello"]
)


@st.composite
def part(draw: st.DrawFn) -> bytes:
    data = draw(PAYLOADS)
    ctype = draw(st.sampled_from(["application/octet-stream", "image/jpeg", "text/plain"]))
    name = draw(st.sampled_from(["", "a.jpg", "notes.txt", "clip.mp4"]))
    cte = draw(st.sampled_from(["base64", "quoted-printable", "7bit", "x-unknown", "BASE64"]))
    if cte.lower() == "base64":
        body = base64.encodebytes(data).replace(b"\n", CRLF)
        damage = draw(st.integers(0, 3))
        if damage == 1:
            body = body[:100] + b"*" + body[100:]
        elif damage == 2:
            body = body.rstrip(b"=\r\n")
    elif cte == "quoted-printable":
        body = quopri.encodestring(data).replace(b"\n", CRLF)
    else:
        body = base64.encodebytes(data).replace(b"\n", CRLF)
    disposition = draw(st.sampled_from(["", "inline", "attachment"]))
    head = f"Content-Type: {ctype}" + (f"; name={name}" if name else "") + "\r\n"
    head += f"Content-Transfer-Encoding: {cte}\r\n"
    if disposition:
        head += f"Content-Disposition: {disposition}\r\n"
    return head.encode() + CRLF + body


@st.composite
def forwarded(draw: st.DrawFn, depth: int) -> bytes:
    """A message/rfc822 part: a generated message, as it is or base64-encoded."""
    inner = draw(messages(depth + 1))
    if draw(st.integers(0, 4)) == 0:
        inner = inner.replace(b"--b", b"--c")  # not a message that can be read
    if draw(st.booleans()):
        return b"Content-Type: message/rfc822\r\n\r\n" + inner
    body = base64.encodebytes(inner).replace(b"\n", CRLF)
    return b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body


@st.composite
def messages(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(["mixed", "related"]))
    child = st.one_of(part(), forwarded(depth)) if depth < MAX_NESTED + 1 else part()
    children = draw(st.lists(child, min_size=1, max_size=4))
    b = f"b{depth}"
    out = f"Subject: s\r\nContent-Type: multipart/{kind}; boundary={b}\r\n\r\n".encode()
    for c in children:
        out += f"--{b}\r\n".encode() + c + CRLF
    return out + f"--{b}--\r\n".encode()


@settings(max_examples=200, deadline=None)
@given(messages())
def test_findings_streamed_are_those_of_whole_bodies(content: bytes) -> None:
    try:
        expected = whole_body_findings(content)
    except MimeError as exc:
        expected_error: str | None = exc.slug
    else:
        expected_error = None
    try:
        found = find_media(content, LIMIT)
    except MimeError as exc:
        assert exc.slug == expected_error
    else:
        assert expected_error is None
        assert found == expected
