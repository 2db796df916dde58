"""gateway.directory.addresses: the one place address syntax is judged."""

from __future__ import annotations

import pytest

from gateway.directory.addresses import (
    AddressSyntaxError,
    AmbiguousHeader,
    header_addresses,
    normalise,
    raw_parts,
)
from gateway.mail.headers import split_message


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("ok@contact.example", "ok@contact.example"),
        ("OK@CONTACT.EXAMPLE", "ok@contact.example"),
        ("J.Whitaker@Cafcass.Gov.UK", "j.whitaker@cafcass.gov.uk"),
        ("jo+tag@a.example", "jo+tag@a.example"),
    ],
)
def test_plain_addresses_compare_case_insensitively(given: str, key: str) -> None:
    a = normalise(given)
    assert a.plain
    assert a.key == key
    assert a.given == given  # never rewritten for the caller


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ('"ok@contact.example"@evil.example', "quoted local part"),
        ('"o k"@contact.example', "quoted local part"),
        ("ok@[192.0.2.1]", "domain literal"),
        ("bücher@contact.example", "non-ASCII (SMTPUTF8) address"),
        ("ok@cöntact.example", "non-ASCII (SMTPUTF8) address"),
        ("ok@xn--cntact-wqf.example", "punycode (xn--) domain"),
        ("ok%evil.example@contact.example", "routing characters (% or !) in the local part"),
        ("evil.example!ok@contact.example", "routing characters (% or !) in the local part"),
    ],
)
def test_unusual_shapes_are_named(given: str, why: str) -> None:
    assert why in normalise(given).unusual
    assert not normalise(given).plain


def test_a_normal_form_that_differs_is_reported_not_applied() -> None:
    a = normalise("ok@xn--cntact-wqf.example")
    assert a.rewritten  # email-validator would show the Unicode form
    assert a.domain == "xn--cntact-wqf.example"
    assert a.unicode_domain == "cоntact.example"  # Cyrillic o
    assert not normalise("OK@CONTACT.EXAMPLE").rewritten  # ASCII case is not a rewrite


@pytest.mark.parametrize(
    "given",
    [
        "postmaster",
        "",
        "@contact.example",
        "ok@",
        '"ok\rx"@contact.example',
        "ok\x00@contact.example",
        "ok@contact.example.",
        "j..whitaker@cafcass.gov.uk",
        "ok.@contact.example",
        "o k@contact.example",
        "ok@localhost",
        "ok@contact.invalid",
        "a" * 65 + "@contact.example",
    ],
)
def test_invalid_addresses_raise(given: str) -> None:
    with pytest.raises(AddressSyntaxError):
        normalise(given)


def test_raw_parts_sees_through_quotes_and_judges_nothing() -> None:
    assert raw_parts('"/FAX=+44 20 7946\\"0/"@corp.example') == (
        '/FAX=+44 20 7946"0/',
        "corp.example",
    )
    assert raw_parts("postmaster") == ("postmaster", "")
    assert raw_parts('"a@b"@c.example') == ("a@b", "c.example")


def _fields(header: str) -> list:  # type: ignore[type-arg]
    fields, _ = split_message(header.encode() + b"\r\nbody\r\n")
    return [f for f in fields if f.key in ("to", "cc")]


def test_header_addresses_flattens_names_and_groups() -> None:
    found = header_addresses(
        _fields(
            'To: J. Smith <j@x.example>, "Doe, Jane" <jane@y.example>\r\n'
            "Cc: team: b@y.example, c@z.example;, undisclosed-recipients:;\r\n"
        )
    )
    assert found == ["j@x.example", "jane@y.example", "b@y.example", "c@z.example"]


@pytest.mark.parametrize(
    "header",
    [
        "To: a@b.example <c@d.example>\r\n",  # two parsers read two different recipients
        "To: bad@@x.example\r\n",
        "To: me@ours.example)<x@evil.example>\r\n",  # CVE-2023-27043 shape
    ],
)
def test_ambiguous_recipient_headers_are_refused(header: str) -> None:
    with pytest.raises(AmbiguousHeader):
        header_addresses(_fields(header))
    # Fields are read once and kept: a refusal is not kept as an answer.
    with pytest.raises(AmbiguousHeader):
        header_addresses(_fields(header))


def test_a_field_read_again_gives_the_same_addresses_in_order() -> None:
    header = "To: b@y.example, a@x.example\r\nCc: b@y.example\r\n"
    first = header_addresses(_fields(header))
    assert (
        header_addresses(_fields(header)) == first == ["b@y.example", "a@x.example", "b@y.example"]
    )


def test_header_with_invalid_utf8_is_refused() -> None:
    fields, _ = split_message(b"To: \xff@x.example\r\n\r\n")
    with pytest.raises(AmbiguousHeader):
        header_addresses(fields)
