"""Property-based tests over generated MIME trees (hypothesis).

Each generated message is built from bytes we control, with every body text part marked by an
``X-Leaf`` field and every other part recorded byte for byte. For any such message:
the output parses; each body text part decodes to the original plus exactly one notice; every
other part, the preamble and the epilogue are unchanged; no line exceeds 998 octets; and a
second pass changes nothing. The ``email`` package is the independent reader.
"""

from __future__ import annotations

import base64
import email
import email.policy
import html
import quopri
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice
from gateway.errors import Refused

NOTICES = [Notice.load(DEFAULT_FILE), Notice.from_text("Vertraulich – nur für den Empfänger.")]

# Charsets and characters each can carry (a sample of scripts, kept small for speed).
ALPHABETS = {
    "us-ascii": st.characters(min_codepoint=32, max_codepoint=126),
    "utf-8": st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn")),
    "iso-8859-1": st.characters(min_codepoint=32, max_codepoint=255).filter(
        lambda c: not 127 <= ord(c) < 160
    ),
    "windows-1252": st.sampled_from(list("abc XYZ 09 €‘’“”–—é")),
    "iso-2022-jp": st.sampled_from(list("abc XYZ 09 土曜日の面会は時からです。")),
    "shift_jis": st.sampled_from(list("abc XYZ 09 田中様よろしく")),
    "utf-16": st.characters(min_codepoint=32, max_codepoint=0x2FFF).filter(
        lambda c: not 0xD800 <= ord(c) < 0xE000 and not 127 <= ord(c) < 160
    ),
}


@dataclass
class Built:
    content: bytes
    leaves: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (subtype, text)
    kept: list[bytes] = field(default_factory=list)  # bytes that must appear unchanged
    boundaries: int = 0


@st.composite
def text_body(draw: st.DrawFn, charset: str) -> str:
    lines = draw(st.lists(st.text(ALPHABETS[charset], max_size=60), max_size=6))
    end = draw(st.sampled_from(["\r\n", ""])) if lines else ""
    return "\r\n".join(line.strip() for line in lines) + end


def encode(text: str, charset: str, cte: str) -> bytes:
    data = text.encode(charset)
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    if cte == "quoted-printable":
        # Python's quopri encodes LF-only text; our hard line breaks are CRLF.
        lines = data.split(b"\r\n")
        return b"\r\n".join(quopri.encodestring(line).replace(b"\n", b"\r\n") for line in lines)
    return data


@st.composite
def text_leaf(draw: st.DrawFn, out: Built, subtype: str) -> bytes:
    charset = draw(st.sampled_from(sorted(ALPHABETS)))
    text = draw(text_body(charset))
    if subtype == "html":
        inner = html.escape(text)
        text = draw(
            st.sampled_from(
                [
                    f"<html><body>{inner}</body></html>\r\n",
                    f"<HTML><BODY>\r\n{inner}\r\n</BODY></HTML>",
                    f'<div dir="ltr">{inner}</div>',
                ]
            )
        )
    data = text.encode(charset)
    ctes = ["base64"]
    if charset != "utf-16":  # UTF-16 has NUL and CR bytes: only base64 carries it (RFC 2781)
        ctes += ["quoted-printable", "8bit"]
        if data.isascii():
            ctes.append("7bit")
    cte = draw(st.sampled_from(ctes))
    params = ""
    if subtype == "plain" and draw(st.booleans()):
        params = "; format=flowed" + draw(st.sampled_from(["", "; delsp=yes"]))
    leaf_id = f"L{len(out.leaves)}"
    out.leaves[leaf_id] = (subtype, text)
    return (
        f"Content-Type: text/{subtype}; charset={charset}{params}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\nX-Leaf: {leaf_id}\r\n\r\n"
    ).encode() + encode(text, charset, cte)


@st.composite
def other_leaf(draw: st.DrawFn, out: Built) -> bytes:
    kind = draw(st.sampled_from(["pdf", "named-text", "rfc822", "image"]))
    if kind == "pdf":
        payload = base64.encodebytes(draw(st.binary(max_size=300))).replace(b"\n", b"\r\n")
        entity = (
            b'Content-Type: application/pdf; name="a.pdf"\r\nContent-Disposition: '
            b'attachment; filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + payload
        )
    elif kind == "named-text":
        entity = (
            b'Content-Type: text/plain; charset=us-ascii; name="notes.txt"\r\n\r\n'
            + draw(text_body("us-ascii")).encode()
        )
    elif kind == "rfc822":
        inner = draw(text_body("us-ascii")).encode()
        entity = (
            b"Content-Type: message/rfc822\r\n\r\nFrom: x@school.example\r\n"
            b"Subject: fwd\r\nContent-Type: text/plain\r\n\r\n" + inner
        )
    else:
        payload = base64.encodebytes(draw(st.binary(min_size=1, max_size=200)))
        entity = (
            b"Content-Type: image/png\r\nContent-ID: <img1@x>\r\nContent-Disposition: "
            b'inline; filename="i.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + payload.replace(b"\n", b"\r\n")
        )
    out.kept.append(entity)
    return entity


def multipart(out: Built, subtype: str, parts: list[bytes], pre: bytes, epi: bytes) -> bytes:
    out.boundaries += 1
    boundary = f"=_prop_{out.boundaries}_".encode()
    out.kept.extend(x for x in (pre, epi) if x)
    body = pre + b"".join(b"\r\n--" + boundary + b"\r\n" + p for p in parts)
    body += b"\r\n--" + boundary + b"--\r\n" + epi
    return (
        b"Content-Type: multipart/"
        + subtype.encode()
        + b'; boundary="'
        + boundary
        + b'"\r\n\r\n'
        + body
    )


@st.composite
def body_structure(draw: st.DrawFn, out: Built) -> bytes:
    shape = draw(st.sampled_from(["plain", "html", "alternative", "related", "alt-related"]))
    if shape in ("plain", "html"):
        return draw(text_leaf(out, shape))
    if shape == "alternative":
        return multipart(
            out,
            "alternative",
            [draw(text_leaf(out, "plain")), draw(text_leaf(out, "html"))],
            b"",
            b"",
        )
    related = multipart(
        out, "related", [draw(text_leaf(out, "html")), draw(other_leaf(out))], b"", b""
    )
    if shape == "related":
        return related
    return multipart(out, "alternative", [draw(text_leaf(out, "plain")), related], b"", b"")


@st.composite
def messages(draw: st.DrawFn) -> Built:
    out = Built(b"")
    body = draw(body_structure(out))
    if draw(st.booleans()):
        before = draw(st.lists(other_leaf(out), max_size=2))
        after = draw(st.lists(other_leaf(out), max_size=3))
        pre = draw(st.sampled_from([b"", b"This is a multi-part message in MIME format.\r\n"]))
        epi = draw(st.sampled_from([b"", b"epilogue text\r\n"]))
        body = multipart(out, "mixed", [*before, body, *after], pre.rstrip(b"\r\n"), epi)
    out.content = (
        b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: p\r\n"
        b"MIME-Version: 1.0\r\n" + body
    )
    return out


def expected_text(subtype: str, old: str, part: EmailMessage, notice: Notice) -> str:
    nl = "\r\n" if "\r\n" in old or "\n" not in old else "\n"
    if subtype == "html":
        closes = [m.start() for m in re.finditer("</body>", old, re.IGNORECASE)]
        at = closes[-1] if closes else len(old)
        lead = nl if old[:at] and not old[:at].endswith("\n") else ""
        return old[:at] + lead + notice.html(nl) + old[at:]
    flowed = str(part.get_param("format", "")).lower() == "flowed"
    delsp = str(part.get_param("delsp", "")).lower() == "yes"
    lead = "" if not old else nl if old.endswith("\n") else nl + nl
    return old + lead + notice.plain(nl, flowed, delsp)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(built=messages(), which=st.sampled_from([0, 1]))
def test_generated_trees(built: Built, which: int) -> None:
    notice = NOTICES[which]
    result = add_notice(built.content, notice)
    # What the pipeline calls (the handler found the message clean): the same answer.
    assert add_notice(built.content, notice, clean=True) == result
    out = result.content
    assert result.action == "inserted"
    assert b"\r" not in out.replace(b"\r\n", b"") and b"\n" not in out.replace(b"\r\n", b"")
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    for kept in built.kept:
        assert kept in out
    msg = email.message_from_bytes(out, policy=email.policy.default)
    seen = set()
    for part in msg.walk():
        leaf = part.get("X-Leaf")
        if leaf is None or part.get_content_maintype() != "text":
            continue
        assert isinstance(part, EmailMessage)
        subtype, old = built.leaves[str(leaf)]
        charset = part.get_content_charset() or "us-ascii"
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        assert payload.decode(charset) == expected_text(subtype, old, part, notice)
        seen.add(str(leaf))
    assert seen == set(built.leaves)
    again = add_notice(out, notice)
    assert again.action == "present" and again.content == out


GOLDEN = sorted(
    p.read_bytes()
    for p in (Path(__file__).parent / "data" / "disclaimer").glob("*.eml")
    if not p.name.endswith(".expected.eml")
)
PIECES = [
    b"--",
    b"\r\n",
    b'"',
    b";",
    b"=",
    b"<",
    b"</body>",
    b"<!--",
    b"boundary=",
    b"\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"charset=utf-16",
    b"\xff\xfe",
    b"\x1b$B",
    b" ",
    b"\t",
    b"--x--\r\n",
    b"--x\r\n",
    # MIME-5..9: hidden HTML, unedited alternatives, wide charsets, odd Content-Type forms.
    b'<div style="display:none">',
    b"<style>",
    b"<title>",
    b"</ div>",
    b"<!-->",
    b"Content-Type: text\r\n",
    b"Content-Type: text/x-amp-html\r\n",
    b"Content-Type: text/enriched\r\n",
    b"boundary*=''x",
    b"boundary*0=x; boundary*1=y",
    b"charset=utf-16\r\nContent-Transfer-Encoding: 8bit\r\n",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    content = bytearray(draw(st.sampled_from(GOLDEN)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(content)))
        if draw(st.booleans()):
            content[at:at] = draw(st.sampled_from(PIECES))
        else:
            del content[at : at + draw(st.integers(1, 40))]
    # The SMTP layer hands filters CRLF-only content without NUL (reliability-tests.md SMUG).
    return re.sub(rb"\r\n|\r|\n", b"\r\n", bytes(content)).replace(b"\x00", b"")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=mutated())
def test_mutated_messages_are_refused_or_relayed_whole(content: bytes) -> None:
    """MIME-4 in small: only Refused is raised; output is CRLF only and stable on a re-run."""
    try:
        result = add_notice(content, NOTICES[0])
    except Refused as r:
        assert (r.code, r.enhanced) == (554, "5.6.0")
        return
    assert add_notice(content, NOTICES[0], clean=True) == result  # content is CRLF-clean
    out = result.content
    assert b"\r" not in out.replace(b"\r\n", b"") and b"\n" not in out.replace(b"\r\n", b"")
    longest = max(len(line) for line in content.split(b"\r\n"))
    assert max(len(line) for line in out.split(b"\r\n")) <= max(998, longest)
    email.message_from_bytes(out, policy=email.policy.default).walk()
    if result.action != "present":
        again = add_notice(out, NOTICES[0])
        assert again.action == "present" and again.content == out
