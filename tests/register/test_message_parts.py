"""The register's summary read in place (gateway/mail/parts.py, gateway/mail/chunked.py)
notes exactly what Python's email parser finds: the same attachments (name, type, size,
SHA-256) on generated MIME trees -- nested multiparts, odd boundaries, a missing close
delimiter, repeated boundary lines, forwarded messages, damaged base64 -- and the pieces
decoded about 1 MiB at a time give the bytes of the whole-body decoders.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import quopri
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway.mail import chunked, parts, transfer
from gateway.mail.mime import Entity, MimeError
from gateway.register import message
from gateway.register.message import Summary, summarise, summary_parsed

CRLF = b"\r\n"


def outcome(read: object, content: bytes) -> Summary | str:
    try:
        return read(content)  # type: ignore[operator]
    except parts.Differs:
        raise
    except Exception as exc:
        return type(exc).__name__


# -- generated messages -----------------------------------------------------------------

BOUNDARIES = st.one_of(
    st.text(alphabet="abcXYZ019'()+_,-./:=? ", min_size=1, max_size=70).map(str.strip),
    st.sampled_from(["b1", "=_Part_0", "----=_NextPart_000", "a b", "(x)", "x" * 70]),
).filter(bool)
TYPES = st.sampled_from(
    [
        "text/plain",
        "text/html; charset=utf-8",
        "application/pdf",
        "image/png",
        "video/mp4",
        "application/octet-stream",
        "text",
        "TEXT/Plain",
    ]
)
ENCODINGS = st.sampled_from(
    ["", "7bit", "base64", "BASE64", "quoted-printable", "base64 ", "x-uuencode", "8bit"]
)
NAMES = st.sampled_from(
    ["", "report.pdf", "clip.mp4", "notes.txt", "=?utf-8?q?caf=C3=A9.pdf?=", "a b.png"]
)
PAYLOADS = st.one_of(
    st.binary(max_size=400),
    st.sampled_from(
        [
            b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(100),
            b"\x89PNG\r\n\x1a\n" + bytes(40),
            b"\xff\xd8\xff\xe0" + bytes(30),
            b"%PDF-1.7\n" + bytes(70),
        ]
    ),
)


def encode(data: bytes, cte: str, damage: int) -> bytes:
    kind = cte.strip().lower()
    if kind == "base64":
        text = base64.encodebytes(data).replace(b"\n", CRLF)
        if damage == 1 and text:
            text = text[: len(text) // 2] + b"!" + text[len(text) // 2 :]  # a stray character
        elif damage == 2:
            text = text.rstrip(b"=\r\n")  # padding lost
        elif damage == 3:
            text = text.replace(CRLF, b" " + CRLF, 1)  # a trailing blank
        elif damage == 4 and len(text) > 8:
            text = text[:5] + b"=" + text[5:]  # padding in the middle
        return text
    if kind == "quoted-printable":
        text = quopri.encodestring(data).replace(b"\n", CRLF)
        return text + (b" \t" + CRLF if damage else b"")
    return data.replace(b"\r", b"").replace(b"\n", CRLF)


@st.composite
def leaf(draw: st.DrawFn, depth: int) -> bytes:
    if depth < 2 and draw(st.integers(0, 7)) == 0:  # a forwarded message
        inner = draw(entity(depth + 1))
        return b"Content-Type: message/rfc822" + CRLF + CRLF + inner
    heads = []
    ctype = draw(TYPES)
    name = draw(NAMES)
    if draw(st.booleans()):
        heads.append(f"Content-Type: {ctype}" + (f'; name="{name}"' if name else ""))
    cte = draw(ENCODINGS)
    if cte:
        heads.append(f"Content-Transfer-Encoding: {cte}")
    disposition = draw(st.sampled_from(["", "inline", "attachment"]))
    if disposition or (name and draw(st.booleans())):
        value = disposition or "attachment"
        if name and draw(st.booleans()):
            value += f"; filename*=utf-8''{name.replace(' ', '%20')}"
        elif name:
            value += f'; filename="{name}"'
        heads.append(f"Content-Disposition: {value}")
    body = encode(draw(PAYLOADS), cte, draw(st.integers(0, 4)))
    head = "".join(h + "\r\n" for h in heads).encode()
    return head + CRLF + body


@st.composite
def multipart(draw: st.DrawFn, depth: int) -> bytes:
    boundary = draw(BOUNDARIES)
    quoted = draw(st.booleans()) or not boundary.replace("-", "").isalnum()
    param = f'"{boundary}"' if quoted else boundary
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "digest"]))
    children = draw(st.lists(entity(depth + 1), min_size=0, max_size=3))
    delim = b"--" + boundary.encode()
    out = b"Content-Type: multipart/" + subtype.encode() + b"; boundary=" + param.encode()
    out += CRLF + CRLF + draw(st.sampled_from([b"", b"preamble" + CRLF]))
    for child in children:
        out += delim + draw(st.sampled_from([b"", b" ", b"\t"])) + CRLF
        if draw(st.integers(0, 9)) == 0:
            out += delim + CRLF  # a repeated boundary line
        out += child + CRLF
    ending = draw(st.integers(0, 5))
    if ending:  # else: the close delimiter is missing
        out += delim + b"--" + CRLF + draw(st.sampled_from([b"", b"epilogue" + CRLF]))
    return out


def entity(depth: int) -> st.SearchStrategy[bytes]:
    if depth >= 3:
        return leaf(depth)
    return st.one_of(leaf(depth), multipart(depth))


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    top = b"From: a@c4f.example" + CRLF + b"Message-ID: <x@c4f.example>" + CRLF
    top += b"Subject: =?utf-8?q?Caf=C3=A9?=" + CRLF + b"MIME-Version: 1.0" + CRLF
    return top + draw(entity(0))


@settings(max_examples=600, deadline=None)
@given(messages())
def test_the_parts_read_in_place_are_the_email_parsers(content: bytes) -> None:
    expected = outcome(summary_parsed, content)
    try:
        found = outcome(message._summary_in_place, content)
    except parts.Differs as exc:
        event(f"parsed whole: {exc}")
        found = expected
    else:
        event("read in place")
    assert found == expected
    unreadable = Summary(message_id=message.UNREADABLE, subject=message.UNREADABLE)
    assert summarise(content) == (expected if isinstance(expected, Summary) else unreadable)


def _mixed(*children: bytes, close: bool = True, boundary: bytes = b"b1") -> bytes:
    out = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=" + boundary + CRLF + CRLF
    for child in children:
        out += b"--" + boundary + CRLF + child + CRLF
    return out + (b"--" + boundary + b"--\r\n" if close else b"")


PDF = b"%PDF-1.7\n" + os.urandom(3000)
ATTACHED = (
    b"Content-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=r.pdf\r\n\r\n"
    + base64.encodebytes(PDF).replace(b"\n", CRLF)
)
NOTED = {
    "name": "r.pdf",
    "type": "application/pdf",
    "size": len(PDF),
    "sha256": hashlib.sha256(PDF).hexdigest(),
}


def test_an_ordinary_message_is_read_in_place() -> None:
    content = _mixed(b"Content-Type: text/plain\r\n\r\nHello", ATTACHED)
    assert message._summary_in_place(content).attachments == [NOTED]
    assert summary_parsed(content).attachments == [NOTED]


def test_a_forwarded_messages_attachment_is_read_in_place() -> None:
    inner = b"Subject: inner\r\n" + _mixed(ATTACHED, boundary=b"b2")
    content = _mixed(b"Content-Type: message/rfc822\r\n\r\n" + inner)
    assert message._summary_in_place(content).attachments == [NOTED]
    assert summary_parsed(content).attachments == [NOTED]


def test_a_missing_close_delimiter_is_parsed_whole_with_the_same_result() -> None:
    content = _mixed(ATTACHED, close=False)
    with pytest.raises(parts.Differs):
        parts.leaves(content)
    assert summarise(content).attachments == [NOTED] == summary_parsed(content).attachments


def test_damaged_base64_is_decoded_whole_as_email_does() -> None:
    broken = ATTACHED.replace(b"\r\n\r\n", b"\r\n\r\n!", 1)
    in_place = message._summary_in_place(_mixed(broken))
    assert in_place == summary_parsed(_mixed(broken))
    assert in_place.attachments[0]["size"] == len(PDF)


# -- the pieces -------------------------------------------------------------------------


def whole_email(body: bytes, cte: str) -> bytes:
    part = Message(policy=policy.compat32)
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(body.decode("ascii", "surrogateescape"))
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


BODIES = st.one_of(
    st.binary(max_size=600).map(lambda b: encode(b, "base64", 0)),
    st.binary(max_size=600).map(lambda b: encode(b, "quoted-printable", 1)),
    st.builds(encode, st.binary(max_size=300), st.just("base64"), st.integers(0, 4)),
    st.binary(max_size=300),
)


@settings(max_examples=500, deadline=None)
@given(
    BODIES,
    st.sampled_from(["base64", "quoted-printable", "7bit", "x-uuencode"]),
    st.integers(1, 64),
    st.binary(max_size=5),
)
def test_pieces_give_the_whole_decoders_bytes(
    body: bytes, cte: str, chunk: int, around: bytes
) -> None:
    buf = around + body + around
    start, end = len(around), len(around) + len(body)
    try:
        pieces = b"".join(chunked.email_pieces(buf, start, end, cte, chunk))
    except chunked.Unstreamable:
        event(f"email {cte}: whole")
    else:
        assert pieces == whole_email(body, cte)
    try:
        expected: bytes | None = transfer.decode_body(body, cte)
    except (MimeError, binascii.Error):
        expected = None
    try:
        strict: bytes | None = b"".join(chunked.strict_pieces(buf, start, end, cte, chunk))
    except chunked.Unstreamable:
        event(f"strict {cte}: whole")
    else:
        assert strict == expected


def test_a_tally_keeps_the_first_bytes_size_and_digest() -> None:
    data = os.urandom(5000)
    tally = chunked.tally(iter([data[:10], memoryview(data)[10:3000], data[3000:]]))
    assert (tally.size, tally.head) == (5000, data[: chunked.HEAD])
    assert tally.sha256 == hashlib.sha256(data).hexdigest()


# -- a part's header section, read without the parser -------------------------------

FIELD_LINES = st.sampled_from(
    [
        b"Content-Type: text/plain; charset=us-ascii",
        b'Content-Type: multipart/mixed;\r\n\tboundary="=_b 1"',
        b"Content-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf",
        b"content-type:image/png",
        b'Content-Disposition: attachment;\r\n filename="a b.pdf"',
        b"Content-Disposition: attachment; filename*0=lo; filename*1=ng.txt",
        b"Content-Transfer-Encoding:  base64  ",
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n  folded on",
        b"Subject: caf\xc3\xa9 in eight bits",
        b"X-Empty:",
        b"X-Odd-Name_1: v",
        b"From x",  # no colon: the parser reads on as it always did
        b": no name",
        b" continuation first",
        b"Bad Name: v",
    ]
)


@settings(max_examples=300)
@given(
    lines=st.lists(FIELD_LINES, max_size=6),
    separated=st.booleans(),
    newline=st.sampled_from([CRLF, b"\n"]),  # LF: a message queued other than by SMTP
)
def test_a_part_header_section_reads_as_the_parser_reads_it(
    lines: list[bytes], separated: bool, newline: bytes
) -> None:
    fields = b"".join(line + CRLF for line in lines).replace(CRLF, newline)
    # Separated: a blank line, then a body; else the part is all header section.
    content = fields + newline + b"body" + newline if separated else fields
    span = len(fields) + len(newline) if separated else len(content)
    e = Entity(
        start=0, head_end=len(fields), body_start=span, end=len(content), separated=separated,
        fields=[],
    )  # fmt: skip
    ours = parts._headers(content, e)
    theirs = BytesHeaderParser(policy=policy.compat32).parsebytes(content[:span])
    assert ours.items() == theirs.items()
    assert ours.get_content_type() == theirs.get_content_type()
    assert ours.get_params() == theirs.get_params()
    assert ours.get_filename() == theirs.get_filename()
    assert ours.get_boundary() == theirs.get_boundary()
