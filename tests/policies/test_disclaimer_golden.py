"""Golden files: ``tests/policies/data/disclaimer/NAME.eml`` in, ``NAME.expected.eml`` out,
byte for byte.

A ``NAME.notice.txt`` next to a message replaces the default notice for that case. Besides the
exact bytes, each case is checked for what must hold of any output (CRLF only, lines within
998 octets, a second pass adds nothing), and the cases the issue names are checked for their
meaning with the ``email`` package as an independent reader.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice
from gateway.mail.headers import split_message

DATA = Path(__file__).parent / "data" / "disclaimer"
CASES = sorted(
    p.name.removesuffix(".eml") for p in DATA.glob("*.eml") if not p.name.endswith(".expected.eml")
)
NOTICE = Notice.load(DEFAULT_FILE)
POLICY_PARAGRAPHS = (
    "This document is strictly confidential and is intended only for use by the addressee. "
    "If you are not the intended recipient, any disclosure, copying, distribution or any other "
    "action taken in reliance of the information contained in this email is strictly "
    "prohibited.",
    "If you receive this transmission in error, please use the reply function to tell us and "
    "permanently delete what you have received.",
)


def notice_for(name: str) -> Notice:
    custom = DATA / f"{name}.notice.txt"
    return Notice.load(custom) if custom.exists() else NOTICE


def run(name: str) -> tuple[bytes, bytes, str]:
    src = (DATA / f"{name}.eml").read_bytes()
    result = add_notice(src, notice_for(name))
    return src, result.content, result.action


def parsed(content: bytes) -> EmailMessage:
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body_parts(msg: EmailMessage) -> list[EmailMessage]:
    """The inline text/plain and text/html parts, outside message/rfc822, in order."""
    out: list[EmailMessage] = []
    stack = [msg]
    while stack:
        part = stack.pop(0)
        if part.get_content_maintype() == "multipart":
            stack[0:0] = [p for p in part.iter_parts() if isinstance(p, EmailMessage)]
        elif part.get_content_type() in ("text/plain", "text/html") and not (
            part.get_filename() or part.get_content_disposition() == "attachment"
        ):
            out.append(part)
    return out


def body_texts(msg: EmailMessage) -> list[str]:
    return [str(p.get_content()).replace("\r\n", "\n") for p in body_parts(msg)]


def with_notice(old: str, part: EmailMessage, notice: Notice) -> str:
    """What a body text must read as after the filter (line ends as "\n")."""
    if part.get_content_subtype() == "html":
        block = notice.html("\n")
        closes = [m.start() for m in re.finditer("</body>", old, re.IGNORECASE)]
        at = closes[-1] if closes else len(old)
        lead = "\n" if old[:at] and not old[:at].endswith("\n") else ""
        return old[:at] + lead + block + old[at:]
    flowed = str(part.get_param("format", "")).lower() == "flowed"
    delsp = str(part.get_param("delsp", "")).lower() == "yes"
    lead = "" if not old else "\n" if old.endswith("\n") else "\n\n"
    return old + lead + notice.plain("\n", flowed, delsp)


def collapse(text: str) -> str:
    return " ".join(text.split())


def test_default_notice_is_the_policy_wording() -> None:
    # Policy, "Transmitting information": the two paragraphs, word for word.
    assert NOTICE.paragraphs == POLICY_PARAGRAPHS


def test_there_are_at_least_twenty_structures() -> None:
    assert len(CASES) >= 20
    for name in CASES:
        assert (DATA / f"{name}.expected.eml").exists(), name


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    _, out, _ = run(name)
    expected = (DATA / f"{name}.expected.eml").read_bytes()
    assert out == expected
    assert b"\n" not in out.replace(b"\r\n", b"") and b"\r" not in out.replace(b"\r\n", b"")
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    again = add_notice(out, notice_for(name))
    assert again.action == "present"
    assert again.content == out


@pytest.mark.parametrize("name", CASES)
def test_headers_other_than_mime_ones_are_kept(name: str) -> None:
    src, out, _ = run(name)
    kept = [f.raw for f in split_message(src)[0] if not f.key.startswith("content-")]
    out_fields = [f.raw for f in split_message(out)[0]]
    assert [raw for raw in out_fields if raw in kept] == kept
    assert len(out_fields) - len(kept) <= 3 + len(split_message(src)[0]) - len(kept)


@pytest.mark.parametrize(
    "name",
    [
        "plain-no-mime",
        "latin1-qp",
        "windows-1252-8bit",
        "iso-2022-jp",
        "base64-text",
        "utf16-base64",
        "outlook-alternative",
        "gmail-alternative",
        "apple-related",
        "thunderbird-flowed",
        "html-no-body",
    ],
)
def test_each_body_text_reads_as_the_original_plus_one_notice(name: str) -> None:
    src, out, action = run(name)
    assert action == "inserted"
    out_msg = parsed(out)
    before, after = body_texts(parsed(src)), body_texts(out_msg)
    assert len(before) == len(after) >= 1
    for old, new, part in zip(before, after, body_parts(out_msg), strict=True):
        assert new == with_notice(old, part, NOTICE)
        assert (
            collapse(new.replace("<p>", " ").replace("</p>", " ")).count(
                collapse(POLICY_PARAGRAPHS[1])
            )
            == 1
        )


def test_charset_and_encoding_are_kept() -> None:
    for name, ctype in [
        ("latin1-qp", "text/plain; charset=ISO-8859-1"),
        ("windows-1252-8bit", 'text/plain; charset="windows-1252"'),
        ("iso-2022-jp", "text/plain; charset=ISO-2022-JP"),
        ("utf16-base64", "text/plain; charset=utf-16"),
    ]:
        _, out, _ = run(name)
        assert f"\r\nContent-Type: {ctype}\r\n".encode() in out, name


def test_iso_2022_jp_text_survives_and_ends_in_ascii() -> None:
    src, out, _ = run("iso-2022-jp")
    [old], [new] = body_texts(parsed(src)), body_texts(parsed(out))
    assert "土曜日の面会は10時からです。" in old
    assert new.startswith(old)
    assert collapse(new).endswith(collapse(NOTICE.words))
    body = out.split(b"\r\n\r\n", 1)[1]
    assert body.isascii()  # 7bit stays 7bit


def test_flowed_notice_reflows_to_the_paragraphs() -> None:
    _, out, _ = run("thunderbird-flowed")
    body = out.split(b"\r\n\r\n", 1)[1].decode("utf-8")
    tail = body[body.index("This document") :]
    lines = tail.split("\r\n")
    # RFC 3676: a trailing space marks a soft break; a paragraph's last line has none.
    assert lines[0].endswith(" ")
    assert lines[3] == "information contained in this email is strictly prohibited."
    unflowed = "".join(line if line.endswith(" ") else line + "\n" for line in lines)
    assert unflowed.split("\n")[:3] == [POLICY_PARAGRAPHS[0], "", POLICY_PARAGRAPHS[1]]


def test_delsp_flowed_adds_the_deleted_space() -> None:
    _, out, _ = run("flowed-delsp")
    body = out.split(b"\r\n\r\n", 1)[1].decode("ascii")
    tail = body[body.index("This document") :].split("\r\n")
    # RFC 3676 4.2 with DelSp=yes: the last space of a soft line is removed on reading.
    unflowed = "".join(line[:-1] if line.endswith(" ") else line + "\n" for line in tail)
    assert unflowed.split("\n")[0] == POLICY_PARAGRAPHS[0]


def test_html_notice_goes_before_the_real_body_end_not_into_a_comment() -> None:
    _, out, _ = run("html-upper-body-comment")
    text = out.decode("ascii")
    assert text.index('<div class="c4f-notice">') < text.index("</BODY>")
    assert text.endswith("<!-- generator footer </body> -->\r\n")


def test_attachments_and_forwarded_messages_are_byte_identical() -> None:
    for name, marker in [
        ("outlook-related-attachment", b'Content-Type: application/pdf; name="report.pdf"'),
        ("outlook-related-attachment", b'Content-Type: image/png; name="image001.png"'),
        ("gmail-attachment", b'Content-Type: application/pdf; name="visit-notes.pdf"'),
        ("forwarded-rfc822", b"Content-Type: message/rfc822"),
        ("mixed-text-attachment", b'name="notes.txt"'),
        ("calendar-invite", b"Content-Type: text/calendar"),
    ]:
        src, out, _ = run(name)
        start = src.index(marker)
        end = src.index(b"\r\n--", start)
        assert src[start:end] in out, (name, marker)
    src, out, _ = run("forwarded-rfc822")
    assert out.count(b"strictly confidential") == 1
    assert out.endswith(b"--fwd-outer--\r\nThis epilogue is kept as it is.\r\n")
    assert b"\r\nThis is a multi-part message in MIME format.\r\n--fwd-outer\r\n" in out


def test_reply_quoting_an_earlier_notice_gets_its_own_at_the_end() -> None:
    _, out, _ = run("reply-quoting-notice")
    text = out.decode("ascii")
    assert text.count("strictly confidential") == 2
    assert text.rstrip().endswith("permanently delete what you have received.")
    assert text.index("> This document") < text.index("Great, see you then.")


def test_already_carrying_the_notice_is_left_alone() -> None:
    for name in ("already-carries-notice", "already-wrapped-signed"):
        src, out, action = run(name)
        assert action == "present"
        assert out == src


def test_no_text_signed_or_undecodable_mail_is_wrapped_with_the_original_intact() -> None:
    for name in (
        "pdf-only",
        "smime-signed",
        "smime-opaque",
        "pgp-signed",
        "pgp-encrypted",
        "unknown-charset",
    ):
        src, out, action = run(name)
        assert action == "wrapped", name
        head, body = src.split(b"\r\n\r\n", 1)
        mime_fields = [f for f in head.split(b"\r\n") if f.lower().startswith(b"content-")]
        msg = parsed(out)
        assert msg.get_content_type() == "multipart/mixed"
        _, notice = list(msg.iter_parts())
        assert notice.get_content_type() == "text/plain"
        assert collapse(notice.get_content()) == collapse(NOTICE.words)
        # The original entity sits unchanged as the first part.
        assert b"\r\n".join(mime_fields) in out
        assert body in out


def test_charset_that_cannot_carry_the_notice_becomes_utf8() -> None:
    _, out, _ = run("latin1-custom-notice")
    assert b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n" in out
    [text] = body_texts(parsed(out))
    assert text.startswith("Café at ten.")
    assert "Ŵyr a ŷd." in text
    _, out, _ = run("ascii-custom-notice")
    assert b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" in out
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in out  # 7bit cannot carry it
    # HTML keeps its charset: the notice goes in as character references.
    _, out, _ = run("html-custom-notice")
    assert b"charset=iso-8859-1" in out and b"&#372;yr a &#375;d" in out
