"""MIME-8 and MIME-9 (tests/CATALOGUE.md): refuse only what cannot be made safe.

MIME-8: ``Content-Type: text`` has no subtype; RFC 2045 5.2 says a Content-Type that cannot be
parsed is read as ``text/plain; charset=us-ascii``, and so do readers: the notice goes in.
MIME-9: ``multipart/signed`` (and any multipart) whose boundary is given in RFC 2231 form
(``boundary*=``, ``boundary*0=``…) is read, then wrapped whole with the notice as a part of its
own (readers that do not know RFC 2231 still see the notice). What stays refused: two ways of
giving the boundary, and the ambiguous structures of MIME-2.
"""

from __future__ import annotations

import pytest
from conftest import StartGateway
from support.mail_views import notices_seen, parse, views
from support.upstream import Upstream
from test_disclaimer_e2e import relay

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice
from gateway.errors import Refused

NOTICE = Notice.load(DEFAULT_FILE)
HEAD = b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: t\r\nMIME-Version: 1.0\r\n"


def every_view_sees_one_notice(content: bytes) -> bool:
    return all(notices_seen(v, NOTICE.words) == 1 for v in views(parse(content)))


@pytest.mark.parametrize("field", [b"text", b"TEXT", b"text ", b"text (no subtype)"])
def test_mime8_content_type_text_without_subtype_is_plain_text(field: bytes) -> None:
    src = HEAD + b"Content-Type: " + field + b"\r\n\r\nSee you on Saturday.\r\n"
    result = add_notice(src, NOTICE)
    assert result.action == "inserted"
    assert result.content == src + b"\r\n" + NOTICE.plain("\r\n").encode("ascii")
    assert every_view_sees_one_notice(result.content)
    assert add_notice(result.content, NOTICE).action == "present"


def test_mime8_inside_a_multipart() -> None:
    src = HEAD + (
        b'Content-Type: multipart/mixed; boundary="m-b"\r\n\r\n--m-b\r\nContent-Type: text\r\n'
        b"\r\nSee you.\r\n--m-b--\r\n"
    )
    result = add_notice(src, NOTICE)
    assert result.action == "inserted"
    assert b"See you.\r\n\r\nThis document is strictly confidential" in result.content
    assert every_view_sees_one_notice(result.content)


def test_mime8_parameters_of_an_unreadable_type_are_not_trusted() -> None:
    """RFC 2045 5.2: us-ascii, whatever charset= says; 8-bit text then cannot be edited
    safely, so it is wrapped (readers disagree on its charset), not refused."""
    src = HEAD + b"Content-Type: text; charset=utf-8\r\n\r\nCaf\xc3\xa9\r\n"
    result = add_notice(src, NOTICE)
    assert result.action == "wrapped"
    assert b"\r\n\r\nCaf\xc3\xa9\r\n" in result.content
    assert every_view_sees_one_notice(result.content)


def test_mime8_a_notice_the_charset_cannot_carry_rewrites_the_type_in_full() -> None:
    src = HEAD + b"Content-Type: text\r\n\r\nHello.\r\n"
    result = add_notice(src, Notice.from_text("Cyfrinachol: \u0174."))
    [ctype] = [f for f in result.content.split(b"\r\n") if f.lower().startswith(b"content-type")]
    assert ctype.startswith(b"Content-Type: text/plain;")
    msg = parse(result.content)
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg.get_content() == "Hello.\r\n\r\nCyfrinachol: \u0174.\r\n"


@pytest.mark.parametrize(
    "field", [b"multipart", b"text/plain/html", b"/plain", b"text/", b"te xt/plain"]
)
def test_other_unreadable_content_types_stay_refused(field: bytes) -> None:
    src = HEAD + b"Content-Type: " + field + b"\r\n\r\n--x\r\nBody\r\n--x--\r\n"
    with pytest.raises(Refused) as caught:
        add_notice(src, NOTICE)
    assert (caught.value.code, caught.value.enhanced) == (554, "5.6.0")


SIGNED_INNER = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSigned notes for the court.\r\n"
SIGNATURE = (
    b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCA\r\n"
)


def signed(boundary_params: bytes, boundary: bytes = b"sig-b") -> bytes:
    return HEAD + (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n'
        b" micalg=sha-256; " + boundary_params + b"\r\n\r\nThis is an S/MIME signed message\r\n"
        b"--"
        + boundary
        + b"\r\n"
        + SIGNED_INNER
        + b"\r\n--"
        + boundary
        + b"\r\n"
        + SIGNATURE
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )


RFC2231 = {
    "extended": b"boundary*=us-ascii'en'sig-b",
    "extended-no-charset": b"boundary*=''sig-b",
    "percent-encoded": b"boundary*=''sig%2Db",
    "continuations": b'boundary*0="sig"; boundary*1="-b"',
    "extended-continuations": b"boundary*0*=us-ascii''sig; boundary*1*=%2Db",
}


@pytest.mark.parametrize("params", RFC2231.values(), ids=RFC2231.keys())
def test_mime9_signed_with_rfc2231_boundary_is_wrapped_whole(params: bytes) -> None:
    src = signed(params)
    result = add_notice(src, NOTICE)
    assert result.action == "wrapped"
    entity = src.split(b"MIME-Version: 1.0\r\n", 1)[1]
    assert entity in result.content  # the signed entity, byte for byte
    msg = parse(result.content)
    assert msg.get_content_type() == "multipart/mixed"
    first, notice = msg.iter_parts()
    assert first.get_content_type() == "multipart/signed"
    assert first.get_boundary() == "sig-b"
    assert " ".join(str(notice.get_content()).split()) == NOTICE.words
    assert every_view_sees_one_notice(result.content)
    again = add_notice(result.content, NOTICE)
    assert again.action == "present" and again.content == result.content


def test_mime9_signed_refuse_policy_still_refuses_signed_mail() -> None:
    with pytest.raises(Refused) as caught:
        add_notice(signed(RFC2231["extended"]), NOTICE, signed="refuse")
    assert "unsigned" in caught.value.text


def test_mime9_mixed_with_rfc2231_boundary_is_wrapped() -> None:
    src = HEAD + (
        b"Content-Type: multipart/mixed; boundary*=''mix-b\r\n\r\n--mix-b\r\n"
        b"Content-Type: text/plain\r\n\r\nHello.\r\n--mix-b--\r\n"
    )
    result = add_notice(src, NOTICE)
    assert result.action == "wrapped"
    assert src.split(b"\r\n\r\n", 1)[1] in result.content
    assert every_view_sees_one_notice(result.content)


@pytest.mark.parametrize(
    "params",
    [
        b"boundary=sig-b; boundary*=''sig-b",  # two boundaries: readers pick either
        b"boundary*=''sig-b; boundary*=''sig-c",
        b'boundary*0="sig"; boundary*0="-b"',
        b"boundary*=''sig-b; boundary*0=sig-b",
        b"boundary*=utf-8''%E2%80%94sig",  # not ASCII
        b"boundary*=''sig%ZZ",  # bad percent-encoding
    ],
)
def test_ambiguous_or_invalid_rfc2231_boundaries_stay_refused(params: bytes) -> None:
    with pytest.raises(Refused) as caught:
        add_notice(signed(params), NOTICE)
    assert (caught.value.code, caught.value.enhanced) == (554, "5.6.0")


def test_inner_rfc2231_boundary_colliding_with_the_outer_stays_refused() -> None:
    inner = signed(b"boundary*=''m-b", b"m-b").split(b"MIME-Version: 1.0\r\n", 1)[1]
    src = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="m-b"\r\n\r\n--m-b\r\n'
        + inner
        + (b"\r\n--m-b--\r\n")
    )
    with pytest.raises(Refused):
        add_notice(src, NOTICE)


async def test_mime8_content_type_text_arrives_with_the_notice(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    sent = HEAD + b"Content-Type: text\r\n\r\nSee you on Saturday.\r\n"
    _, content = await relay(start_gateway, upstream, sent)
    notice = NOTICE.plain("\r\n").encode("ascii")
    assert content.endswith(b"\r\n\r\nSee you on Saturday.\r\n\r\n" + notice)


async def test_mime9_signed_with_rfc2231_boundary_arrives_wrapped(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    sent = signed(RFC2231["extended"])
    _, content = await relay(start_gateway, upstream, sent)
    assert parse(content).get_content_type() == "multipart/mixed"
    entity = sent.split(b"MIME-Version: 1.0\r\n", 1)[1]
    assert entity.removesuffix(b"\r\n") in content  # the signed entity, byte for byte
