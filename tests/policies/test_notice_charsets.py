"""The notice appended in the body part's own charset (gateway.mail.mime_edit.encode_text):
the original bytes kept, the result always decoding to the text with the notice after it,
and UTF-8 only when the charset cannot carry the notice."""

from __future__ import annotations

import pytest

from gateway.mail.mime_edit import encode_text

NOTICE = "\r\nCONFIDENTIAL: for the named recipient only.\r\n"


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        ("ascii", "Dear Sam,\r\nsee you Monday.\r\n"),
        ("utf-8", "Chère Zoë,\r\n à lundi.\r\n"),
        ("iso8859-15", "Prix: 10 €\r\n"),
        ("cp1252", "“Quoted” – dash\r\n"),
        ("koi8-r", "Привет\r\n"),
        ("utf-16", "Hello\r\n"),  # a byte order mark: appending bytes would put a second
        ("iso2022_jp", "日本語\r\n"),  # shift states: the old bytes end back in ASCII
    ],
)
def test_appended_notice_decodes_to_the_text_and_the_notice(codec: str, text: str) -> None:
    old = text.encode(codec)
    new, charset = encode_text(old, text, len(text), NOTICE, codec)
    assert charset == ""
    assert new.decode(codec) == text + NOTICE
    assert new.startswith(old)  # the original bytes stay, byte order mark included


@pytest.mark.parametrize("codec", ["ascii", "utf-8", "cp1252"])
def test_appending_keeps_every_original_byte(codec: str) -> None:
    text = "line one\r\nline two\r\n"
    old = text.encode(codec)
    new, _ = encode_text(old, text, len(text), NOTICE, codec)
    assert new == old + NOTICE.encode(codec)


def test_a_charset_that_cannot_carry_the_notice_becomes_utf8() -> None:
    text = "Dear Sam,\r\n"
    new, charset = encode_text(text.encode("ascii"), text, len(text), "\r\nNoté\r\n", "ascii")
    assert charset == "utf-8"
    assert new.decode("utf-8") == text + "\r\nNoté\r\n"


def test_inserted_inside_the_text_where_it_was_asked() -> None:
    text = "<p>hello</p></body>"
    at = text.index("</body>")
    new, charset = encode_text(text.encode("utf-8"), text, at, "<p>notice</p>", "utf-8")
    assert (new, charset) == (b"<p>hello</p><p>notice</p></body>", "")
