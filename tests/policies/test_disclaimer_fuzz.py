"""MIME-4 (reliability-tests.md 5): a fuzz harness over the disclaimer, reading every part.

For any message the SMTP layer would hand the filter (CRLF only, no NUL):

- only :class:`Refused` (554 5.6.0, with a reason) is raised;
- the output has no NUL and no bare CR or LF (what the gateway refuses from clients);
- the header fields other than Content-* are kept, in order;
- every way a reader may show the output (each alternative, :mod:`support.mail_views`) sees
  the notice: exactly once when the input carried none, and never hidden in HTML;
- a second pass changes nothing.

Inputs: hostile trees built for the attacks of MIME-5..9 (HTML left open in hiding elements,
alternatives the gateway does not edit, UTF-16/UTF-32/EBCDIC bodies, ``Content-Type: text``,
RFC 2231 boundaries) on top of the generators of test_disclaimer_property.py, and its
mutated golden files. CI runs a bounded number of examples; ``bench/disclaimer_fuzz.py``
runs the same checks for as long as it is given.
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.mail_views import notices_seen, parse, views
from test_disclaimer_property import (
    NOTICES,
    Built,
    encode,
    multipart,
    mutated,
    other_leaf,
    text_body,
    text_leaf,
)
from test_disclaimer_property import messages as plain_trees

from filters.disclaimer import Notice, add_notice
from gateway.errors import Refused
from gateway.mail.headers import split_message

UNCLEAN = re.compile(rb"\r(?!\n)|(?<!\r)\n|\x00")  # RFC 5322 2.3, RFC 2045 2.7 and 2.8
HEAD = b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: f\r\nMIME-Version: 1.0\r\n"

# What may stand before the end of an HTML body: hidden things closed or left open, and
# markup Python's parser reads differently from a browser.
HTML_ENDS = [
    "",
    '<div style="display:none">preview</div>',
    '<div style="display:none">preview',
    "<div hidden>x",
    '<span style="visibility:hidden">',
    '<div style="mso-hide:all">x',
    "<style>p {}",
    "<style>p {}</style>",
    "<script>a < b</script>",
    "<script>x",
    "<title>t",
    "<title>t</title>",
    "<!-- c",
    "<!-- c -->",
    "<!-- c -- >",
    "<!--> <div hidden> -->",
    "<template>t",
    "<noscript>n",
    "<div hidden>x</ div>",
    '<div hidden>x</b x="></div>">',
    "<![if x> <div hidden> ]>",
    "<![if !supportLists]>1.<![endif]>",
    '<p><b style="display:none">x</p>y',
    "<div hidden/>",
    "<div hidden><p>x</div>",
    "<table><tr><td>x",
    "<b>bold",
    "<details><summary>s</summary>d",
    "<head><meta charset=utf-8>",
    "<svg><rect/></svg>",
    "<!--[if mso]><p>o</p><![endif]-->",
    "<plaintext>",
    "<p>",
    "</p></div>",
]
HTML_FRAMES = [
    "<html><body>@</body></html>\r\n",
    "<html><head><style>p {}</style><title>t</title></head><BODY>\r\n@\r\n</BODY></html>",
    '<div dir="ltr">@</div>',
    "@",
    "<html><body>@</body><body></body></html>",
]
ODD_TEXT = [
    ("x-amp-html", "<html amp4email><body><p>See you</p></body></html>"),
    ("enriched", "<bold>See you</bold>"),
    ("calendar", "BEGIN:VCALENDAR\r\nEND:VCALENDAR"),
    ("markdown", "**See you**"),
    ("watch-html", "<b>See you</b>"),
]
WIDE = {  # charsets whose line breaks are not the bytes CR LF, and text each can carry
    "utf-16": "土曜日の面会 Saturday",
    "utf-16le": "䅁䉂 面会",
    "utf-16be": "面会 ok",
    "utf-32": "面会",
    "ibm037": "Hello Bob",
}


def entity(ctype: str, cte: str, body: bytes) -> bytes:
    return f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode() + body


@st.composite
def hostile_html(draw: st.DrawFn) -> bytes:
    inner = html.escape(draw(text_body("us-ascii")))
    ends = "".join(draw(st.lists(st.sampled_from(HTML_ENDS), max_size=3)))
    text = draw(st.sampled_from(HTML_FRAMES)).replace("@", inner + ends)
    cte = draw(st.sampled_from(["7bit", "quoted-printable", "base64"]))
    return entity("text/html; charset=us-ascii", cte, encode(text, "us-ascii", cte))


@st.composite
def wide_text(draw: st.DrawFn) -> bytes:
    charset = draw(st.sampled_from(sorted(WIDE)))
    data = WIDE[charset].encode(charset)
    ctes = ["quoted-printable", "base64"]
    if not UNCLEAN.search(data):  # the SMTP layer refuses NUL and bare CR/LF on arrival
        ctes += ["8bit"] + (["7bit"] if data.isascii() else [])
    cte = draw(st.sampled_from(ctes))
    return entity(f"text/plain; charset={charset}", cte, encode(WIDE[charset], charset, cte))


@st.composite
def hostile_leaf(draw: st.DrawFn, out: Built) -> bytes:
    kind = draw(st.sampled_from(["html", "plain", "odd", "no-subtype", "wide", "other"]))
    if kind == "html":
        return draw(hostile_html())
    if kind == "plain":
        return draw(text_leaf(out, "plain"))
    if kind == "odd":
        subtype, text = draw(st.sampled_from(ODD_TEXT))
        return entity(f"text/{subtype}; charset=utf-8", "7bit", text.encode())
    if kind == "no-subtype":
        params = draw(st.sampled_from(["", "; charset=us-ascii", "; charset=utf-8", "; x=1"]))
        return f"Content-Type: text{params}\r\n\r\n".encode() + draw(text_body("us-ascii")).encode()
    if kind == "wide":
        return draw(wide_text())
    return draw(other_leaf(out))


BOUNDARY_FORMS = ['boundary="{}"', "boundary*=''{}", "boundary*=us-ascii'en'{}", "boundary*0={}"]


@st.composite
def hostile_entity(draw: st.DrawFn, out: Built, depth: int = 0) -> bytes:
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return draw(hostile_leaf(out))
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "signed"]))
    children = draw(st.lists(hostile_entity(out, depth + 1), min_size=1, max_size=3))
    if subtype == "signed":
        signature = b"Content-Type: application/pgp-signature\r\n\r\nsig\r\n"
        children = [children[0], signature]
    built = multipart(out, subtype, children, b"", b"")
    boundary = f"=_prop_{out.boundaries}_"
    form = draw(st.sampled_from(BOUNDARY_FORMS)).format(boundary)
    return built.replace(f'boundary="{boundary}"'.encode(), form.encode(), 1)


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(plain_trees()).content  # the property test's trees, every charset
    return HEAD + draw(hostile_entity(Built(b"")))


def check(content: bytes, notice: Notice) -> str:
    """The MIME-4 assertions for one input; returns what the filter did."""
    try:
        result = add_notice(content, notice)
    except Refused as r:
        assert (r.code, r.enhanced) == (554, "5.6.0") and r.text
        return "refused"
    out = result.content
    assert not UNCLEAN.search(out)
    longest = max(len(line) for line in content.split(b"\r\n"))
    assert max(len(line) for line in out.split(b"\r\n")) <= max(998, longest)
    kept = [f.raw for f in split_message(content)[0] if not f.key.startswith("content-")]
    assert [f.raw for f in split_message(out)[0] if f.raw in kept] == kept
    carried = " ".join(notice.words.split()[:3]) in " ".join(content.decode("latin-1").split())
    for view in views(parse(out)):
        seen = notices_seen(view, notice.words)
        assert seen >= 1 if carried else seen == 1, [p.get_content_type() for p in view]
    again = add_notice(out, notice)
    assert again.action == "present" and again.content == out
    return result.action


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=hostile_messages(), which=st.sampled_from([0, 1]))
def test_mime4_hostile_messages(content: bytes, which: int) -> None:
    check(content, NOTICES[which])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=mutated())
def test_mime4_mutated_golden_messages(content: bytes) -> None:
    check(content, NOTICES[0])


def test_mime4_found_a_valueless_charset_is_not_left_for_readers_to_guess() -> None:
    """Found by the long run: "charset;" has no value; we took US-ASCII and appended
    charset=utf-8 for a notice it cannot carry, while the email package took the empty first
    one and garbled the notice. The field must be rewritten so every reader agrees."""
    content = HEAD + b"Content-Type: text/plain; charset;=us-ascii\r\n\r\nSee you.\r\n"
    assert check(content, NOTICES[1]) == "inserted"
    assert (
        b'Content-Type: text/plain;\r\n\tcharset="utf-8"\r\n'
        in add_notice(content, NOTICES[1]).content
    )


def test_mime4_found_content_type_text_with_a_charset_is_wrapped() -> None:
    """Found by the long run: "Content-Type: text; charset=ISO-2022-JP" over a body whose
    last JIS escape is broken. Read as US-ASCII (RFC 2045 5.2) it decoded and the notice was
    appended; the email package honours charset= and swallowed the notice in JIS mode.
    Readers disagree on that charset, so such a part is wrapped, not edited."""
    content = HEAD + (
        b"Content-Type: text;/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit"
        b"\r\n\r\n\x1b$Bh$m$7$/$*4j$$$7$^$9!#\x1b(B\r\n"
    )
    assert check(content, NOTICES[0]) == "wrapped"


def test_mime4_found_a_blank_before_a_colon_hides_the_notice_from_some_readers() -> None:
    """Found by the long run: with ``rom :`` (a blank before the colon, obsolete syntax)
    as the first line, Python's email reads the whole message as plain text, so a notice
    put into the HTML part is not seen as one. Such a header is refused (HDR-8)."""
    content = (
        b"rom :Alice <alice@c4f.example>\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n<p>Hello.</p>\r\n"
    )
    assert check(content, NOTICES[0]) == "refused"


def test_mime4_found_a_comment_among_parameters_hides_the_charset_from_readers() -> None:
    """Found by the long run: ``text/plain;\\x1b$B...\\x1b(B`` carries an unclosed "(",
    which readers take as a comment running to the end of the field, so the charset the
    notice needed was read by us but not by them and the notice came out garbled."""
    content = (
        b"From: alice@c4f.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; x(B\r\n\r\nHello.\r\n"
    )
    assert check(content, NOTICES[1]) == "refused"


@pytest.mark.parametrize(
    "html",
    [
        # A ">" inside an unclosed quoted value: html.parser ends the tag there, a browser
        # reads the value on to the next quote, taking the notice in with it.
        b'<div style\r\n="di>Preview text\r\n</body></html>\r\n',
        # "display:nonemax-height:0" is no CSS a browser applies, but a reader may: wrap.
        b'<div style="display:nonemax-height:0;overflow:hidden">Preview text\r\n</body></html>\r\n',
    ],
)
def test_mime4_found_html_that_readers_may_hide_the_notice_in_is_wrapped(html: bytes) -> None:
    content = (
        b"From: alice@c4f.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n<html><body>\r\n<p>Hi.</p>\r\n" + html
    )
    for notice in NOTICES:
        assert check(content, notice) == "wrapped"


def test_mime4_found_a_quote_inside_a_parameter_value_is_refused() -> None:
    """Found by the long run: ``charset=--"windows-1252"`` was read as windows-1252 by us
    and as something else by readers, so the notice, written in that charset, was not seen."""
    content = (
        b"From: alice@c4f.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset=--"windows-1252"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9\r\n"
    )
    assert check(content, NOTICES[1]) == "refused"


def test_mime4_found_a_charset_name_only_python_knows_is_wrapped() -> None:
    """Found by the long run: Python's codec lookup reads ``charset=utf=-16`` as UTF-16;
    readers need not. A charset name outside RFC 2978's characters is unknown: wrapped."""
    content = (
        b"From: alice@c4f.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf=-16\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "日本語の文".encode("utf-16")  # no NUL byte in these characters
        + b"\r\n--b--\r\n"
    )
    assert check(content, NOTICES[0]) == "wrapped"


def test_mime4_found_an_empty_charset_at_the_end_of_the_field_keeps_its_line_end() -> None:
    """Found by the long run: ``charset=`` with no value at the end of Content-Type. The
    charset was set by a pattern whose blanks took the field's CRLF, so the next field
    was glued onto it and readers saw no charset at all."""
    content = (
        b"From: alice@c4f.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=\r\n\r\nHello.\r\n"
    )
    assert check(content, NOTICES[1]) == "inserted"
    out = add_notice(content, NOTICES[1]).content
    assert b"Content-Type: text/plain; charset=utf-8\r\n" in out
