"""MIME-1, MIME-2, MIME-3 and HDR-2 (reliability-tests.md section 5 and 3).

Input the filter cannot read without guessing is refused with ``554 5.6.0`` and a reason;
input it can read is relayed with only the notice added. Sizes from MIME-3 run here for their
outcome; their timing (linear from n to 2n) is measured by ``bench/disclaimer_bench.py``.
"""

from __future__ import annotations

import difflib
import re
import sysconfig
from pathlib import Path

import pytest

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice
from gateway.errors import Refused
from gateway.mail import mime, transfer
from gateway.mail.headers import split_message

NOTICE = Notice.load(DEFAULT_FILE)
HEAD = b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: t\r\nMIME-Version: 1.0\r\n"


def refused(content: bytes) -> Refused:
    with pytest.raises(Refused) as caught:
        add_notice(content, NOTICE)
    assert (caught.value.code, caught.value.enhanced) == (554, "5.6.0")
    assert caught.value.text.startswith("Cannot add the required confidentiality notice safely: ")
    return caught.value


def multipart(boundary: bytes, *parts: bytes, close: bool = True, kind: bytes = b"mixed") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + boundary + b"--\r\n"
    return b"Content-Type: multipart/" + kind + b'; boundary="' + boundary + b'"\r\n\r\n' + body


TEXT = b"Content-Type: text/plain\r\n\r\nHello.\r\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (HEAD + multipart(b"b1", TEXT, close=False), "no closing boundary"),
        (HEAD + multipart(b"b1", multipart(b"b1", TEXT)), "repeats after the close"),
        (HEAD + multipart(b"b1", multipart(b"b1x", TEXT)), "extends a multipart boundary"),
        (HEAD + multipart(b"b1x", multipart(b"b1", TEXT)), "reuses an enclosing boundary"),
        (HEAD + b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n', "invalid boundary"),
        (HEAD + b"Content-Type: multipart/mixed\r\n\r\n--x\r\n", "invalid boundary"),
        (HEAD + TEXT.replace(b"\r\n\r\n", b"\r\nContent-Type: text/html\r\n\r\n"), "repeats"),
        (
            HEAD
            + b"Content-Transfer-Encoding: 7bit\r\n"
            + TEXT.replace(b"\r\n\r\n", b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
            "repeats",
        ),
        (HEAD + b"No colon here\r\n\r\nBody\r\n", "malformed header"),
        (b" continued\r\n" + HEAD + b"\r\nBody\r\n", "malformed header"),
        (HEAD + b"Content-Type: text/plain\r\n\r\nNUL \x00 here\r\n", "NUL"),
        # "text" alone is read as text/plain (RFC 2045 5.2, MIME-8); "multipart" alone is not.
        (
            HEAD + b"Content-Type: multipart\r\n\r\nBody\r\n",
            "Content-Type header field cannot be read",
        ),
        (HEAD + b'Content-Type: text/plain; charset="utf-8\r\n\r\nBody\r\n', "unclosed quote"),
        (
            HEAD
            + b"Content-Type: multipart/mixed; boundary=a; boundary=b\r\n\r\n--a\r\n\r\n--a--\r\n",
            "repeats boundary=",
        ),
        (
            HEAD + multipart(b"b1", TEXT).replace(b"--b1\r\nContent", b"--b1junk\r\nContent"),
            "extends a multipart boundary",
        ),
        (
            HEAD + b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\nno delimiter\r\n',
            "no boundary line",
        ),
        (
            HEAD
            + multipart(b"b1", TEXT, TEXT).replace(b"\r\n--b1\r\nContent", b"\r\n--b1 x\r\nC", 1),
            "extends a multipart boundary",
        ),
        (HEAD + multipart(b"b1", TEXT) + b"--b1\r\n" + TEXT + b"--b1--\r\n", "repeats after"),
        (
            HEAD + b"Content-Transfer-Encoding: base64\r\n" + multipart(b"b1", TEXT),
            "transfer encoding",
        ),
        (HEAD + multipart(b"b" * 201, TEXT), "invalid boundary"),
    ],
)
def test_mime2_unreadable_structure_is_refused(content: bytes, reason: str) -> None:
    assert reason in refused(content).text


def test_mime2_deep_nesting_is_refused_quickly() -> None:
    content = b"Content-Type: text/plain\r\n\r\nx\r\n"
    for depth in range(1000):
        content = multipart(f"d{depth}".encode(), content)
    assert "nested more than" in refused(HEAD + content).text
    assert mime.MAX_DEPTH < 1000


def test_too_many_parts_are_refused() -> None:
    content = multipart(b"many", *([TEXT] * (mime.MAX_PARTS + 1)))
    assert "more than" in refused(HEAD + content).text
    # One fewer part than the limit (counting the multipart itself) is accepted.
    ok = add_notice(HEAD + multipart(b"many", *([TEXT] * (mime.MAX_PARTS - 1))), NOTICE)
    assert ok.action == "inserted" and ok.parts == 1


def test_mime2_bad_base64_in_the_body_text_is_wrapped_untouched() -> None:
    part = (
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=QUJD!!\r\n"
    )
    src = HEAD + part
    result = add_notice(src, NOTICE)
    assert result.action == "wrapped"
    assert part in result.content


def test_mime2_bad_base64_in_an_attachment_is_not_our_business() -> None:
    attachment = (
        b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: "
        b"base64\r\n\r\n%%% not base64 %%%\r\n"
    )
    src = HEAD + multipart(b"b1", TEXT, attachment)
    result = add_notice(src, NOTICE)
    assert result.action == "inserted"
    assert attachment in result.content


def test_mime2_quoted_printable_with_a_trailing_soft_break() -> None:
    src = (
        HEAD
        + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc="
    )
    result = add_notice(src, NOTICE)
    body = split_message(result.content)[1]
    assert transfer.decode_body(body, "quoted-printable").decode() == (
        "abc\r\n\r\n" + NOTICE.plain("\r\n")
    )


def test_mime2_utf7_and_unknown_charsets() -> None:
    utf7 = HEAD + b"Content-Type: text/plain; charset=utf-7\r\n\r\nCaf+AOk-\r\n"
    result = add_notice(utf7, NOTICE)
    assert result.action == "inserted"
    body = split_message(result.content)[1]
    assert body.decode("utf-7") == "Café\r\n\r\n" + NOTICE.plain("\r\n")
    unknown = HEAD + b"Content-Type: text/plain; charset=x-no-such-set\r\n\r\nText\r\n"
    assert add_notice(unknown, NOTICE).action == "wrapped"
    # A Python codec no mail client knows is treated as unknown, not used.
    pseudo = HEAD + b"Content-Type: text/plain; charset=unicode_escape\r\n\r\nText\r\n"
    assert add_notice(pseudo, NOTICE).action == "wrapped"
    rot = HEAD + b"Content-Type: text/plain; charset=base64\r\n\r\nText\r\n"
    assert add_notice(rot, NOTICE).action == "wrapped"


def test_mime2_eight_bit_headers_and_many_fields_are_kept() -> None:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(50_000))
    src = (
        HEAD + b"Subject: caf\xc3\xa9 \xff\r\n" + fields + b"Content-Type: text/plain\r\n\r\nHi\r\n"
    )
    result = add_notice(src, NOTICE)
    assert result.content.startswith(src.split(b"\r\n\r\n")[0] + b"\r\n\r\nHi\r\n")
    assert len(split_message(result.content)[0]) == len(split_message(src)[0])


def test_mime2_bare_text_with_eight_bit_but_no_charset_is_wrapped() -> None:
    src = HEAD + b"\r\nCaf\xe9\r\n"  # us-ascii by default (RFC 2045 5.2), so not decodable
    result = add_notice(src, NOTICE)
    assert result.action == "wrapped"
    assert b"\r\n\r\nCaf\xe9\r\n\r\n--=_c4f_notice_" in result.content


def test_hdr2_encoded_newline_in_subject_adds_no_header() -> None:
    src = (
        b"From: alice@c4f.example\r\nTo: bob@council.example\r\n"
        b"Subject: =?UTF-8?Q?x=0ABcc:_evil@x?=\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nBody.\r\n"
    )
    before = split_message(src)[0]
    out = add_notice(src, NOTICE).content
    assert [f.raw for f in split_message(out)[0]] == [f.raw for f in before]
    # A notice the charset cannot carry changes the MIME fields, and adds only those.
    out = add_notice(src, Notice.from_text("Vertraulich: bitte löschen.")).content
    after = split_message(out)[0]
    assert [f.key for f in after] == [f.key for f in before] + ["content-transfer-encoding"]
    assert [f.raw for f in after][:4] == [f.raw for f in before][:4]
    assert b"\r\nBcc:" not in out


def test_mime3_huge_headers_are_handled() -> None:
    to = b"To: " + b", ".join(b"user%d@council.example" % i for i in range(20_000)) + b"\r\n"
    words = b"Subject: " + b" ".join([b"=?UTF-8?Q?caf=C3=A9?="] * 10_000) + b"\r\n"
    params = (
        b"Content-Type: text/plain; charset=utf-8"
        + b"".join(b";\r\n p%d=v" % i for i in range(10_000))
        + b"\r\n"
    )
    long = b"X-Long: " + b"a" * 100_000 + b"\r\n"
    src = b"From: alice@c4f.example\r\n" + to + words + long + params + b"\r\nText\r\n"
    result = add_notice(src, NOTICE)
    assert result.action == "inserted"
    assert result.content.startswith(src)


def test_mime3_many_parameters_on_a_multipart() -> None:
    params = b"".join(b'; p%d="v;v"' % i for i in range(10_000))
    src = HEAD + b'Content-Type: multipart/mixed; boundary="b1"' + params + b"\r\n\r\n"
    src += b"--b1\r\n" + TEXT + b"\r\n--b1--\r\n"
    assert add_notice(src, NOTICE).action == "inserted"


def test_notice_cannot_be_switched_off_by_a_header() -> None:
    for header in (
        b"X-C4F-Disclaimer: no\r\n",
        b"X-No-Disclaimer: 1\r\n",
        b"X-C4F-Notice: present\r\n",
        b"Content-Disposition: attachment\r\n",
    ):
        src = HEAD + header + b"Content-Type: text/plain\r\n\r\nHello.\r\n"
        out = add_notice(src, NOTICE)
        assert out.content.count(b"strictly confidential") == 1, header


def test_html_with_an_unterminated_comment_still_shows_the_notice() -> None:
    """Everything after "<!--" is hidden: the message is wrapped with the notice as a part of
    its own, the HTML untouched (MIME-5: the notice goes in only where it is seen)."""
    html = b"<p>Hi</p><!-- unterminated </body>\r\n"
    result = add_notice(HEAD + b"Content-Type: text/html\r\n\r\n" + html, NOTICE)
    assert result.action == "wrapped"
    assert b"\r\n\r\n" + html + b"\r\n--=_c4f_notice_" in result.content
    assert result.content.count(b"strictly confidential") == 1


CORPUS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
CORPUS_FILES = sorted(CORPUS.glob("msg_*.txt")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_FILES, reason="CPython's test_email corpus is not installed here")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_mime1_cpython_corpus(path: Path) -> None:
    """Each message: a 554 5.6.0 with a reason, or a diff that shows only the notice."""
    content = re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
    content = content if content.endswith(b"\r\n") else content + b"\r\n"
    try:
        result = add_notice(content, NOTICE)
    except Refused as r:
        assert (r.code, r.enhanced) == (554, "5.6.0") and r.text
        return
    old, new = content.split(b"\r\n"), result.content.split(b"\r\n")
    diff = list(difflib.diff_bytes(difflib.unified_diff, old, new, lineterm=b"", n=0))
    removed = [d[1:] for d in diff if d.startswith(b"-") and not d.startswith(b"---")]
    added = [d[1:] for d in diff if d.startswith(b"+") and not d.startswith(b"+++")]
    # Only MIME fields move (a wrap) or are re-encoded with the part; nothing else is lost.
    assert all(line in added or line.lower().startswith(b"content-") for line in removed)
    assert b"".join(added).count(b"strictly confidential") == 1
    assert add_notice(result.content, NOTICE).action == "present"


def test_odd_content_type_is_rewritten_cleanly_when_the_charset_changes() -> None:
    """A quoted parameter that looks like charset= is not edited by mistake."""
    src = (
        HEAD + b'Content-Type: text/plain; x-note="see; charset=foo"; charset=iso-8859-1; '
        b"title*=utf-8''caf%C3%A9; x-8bit=\"caf\xe9\"\r\n\r\ncaf\xe9\r\n"
    )
    out = add_notice(src, Notice.from_text("Cyfrinachol: \u0174.")).content
    [ctype] = [f for f in split_message(out)[0] if f.key == "content-type"]
    kind, params = mime.parse_params(ctype.value.decode("latin-1"))
    assert kind == "text/plain"
    assert params == {
        "x-note": "see; charset=foo",
        "charset": "utf-8",
        "title*": "utf-8''caf%C3%A9",
        "x-8bit": "caf\xe9",
    }
    assert max(len(line) for line in ctype.raw.split(b"\r\n")) < 78
    assert split_message(out)[1] == "café\r\n\r\nCyfrinachol: Ŵ.\r\n".encode()
