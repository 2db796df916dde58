"""MIME-5 and MIME-6 (tests/CATALOGUE.md): the notice is always visible.

MIME-5: in HTML the notice goes in only where it is in normal flow with no hidden ancestor;
where that cannot be told (an element left open that hides what follows it, markup that
browsers read differently from Python's parser) the message is wrapped with the notice as a
part of its own. A notice inside a hidden element does not count as present.
MIME-6: an alternative the gateway does not edit (``text/x-amp-html``, ``text/enriched``,
``text/calendar``, any other ``text/*``) must not let a reader see the message without the
notice. Every case is judged by :mod:`support.mail_views`, a reader independent of the code.
"""

from __future__ import annotations

import pytest
from conftest import StartGateway
from support.mail_views import notices_seen, parse, views
from support.upstream import Upstream
from test_disclaimer_e2e import relay

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice

NOTICE = Notice.load(DEFAULT_FILE)
HEAD = b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
BLOCK = NOTICE.html("\r\n")


def html_message(markup: str) -> bytes:
    return HEAD + b"Content-Type: text/html; charset=us-ascii\r\n\r\n" + markup.encode() + b"\r\n"


def assert_every_view_sees_one_notice(content: bytes) -> None:
    all_views = views(parse(content))
    assert all_views
    for view in all_views:
        assert notices_seen(view, NOTICE.words) == 1, [p.get_content_type() for p in view]


def assert_wrapped_intact(src: bytes, out: bytes, action: str) -> None:
    assert action == "wrapped"
    assert src.split(b"\r\n\r\n", 1)[1] in out  # the original body, byte for byte
    msg = parse(out)
    assert msg.get_content_type() == "multipart/mixed"
    *_, last = msg.iter_parts()
    assert last.get_content_type() == "text/plain"
    assert " ".join(str(last.get_content()).split()) == NOTICE.words
    assert_every_view_sees_one_notice(out)
    again = add_notice(out, NOTICE)
    assert again.action == "present" and again.content == out


# The insertion point (before the last </body>, else the end) is hidden in a browser.
HIDDEN_AT_THE_END = {
    "display-none": '<html><body><p>Hi</p><div style="display:none">preview</body></html>',
    "display-none-spaced": '<p>Hi</p><div style="color:red; DISPLAY : none !important">x',
    "hidden-attribute": "<html><body><p>Hi</p><div hidden>x</body></html>",
    "visibility-hidden": '<p>Hi</p><span style="visibility: hidden">x',
    "mso-hide": '<p>Hi</p><div style="mso-hide:all">x',
    "style-left-open": "<html><head><style>p { color: red }</head><body><p>Hi</p></body></html>",
    "script-left-open": "<p>Hi</p><script>var a = 1;</body></html>",
    "title-left-open": "<html><head><title>Visit</head><body><p>Hi</p></body></html>",
    "comment-left-open": "<p>Hi</p><!-- unterminated </body>",
    "template": "<p>Hi</p><template><p>x</body></html>",
    "noscript": "<p>Hi</p><noscript>x</body></html>",
    "textarea": "<p>Hi</p><textarea>x</body></html>",
    "details-closed": "<p>Hi</p><details><summary>More</summary><p>x</body></html>",
    "self-closing-div-stays-open": "<p>Hi</p><div hidden/><p>more</p></body></html>",
    "hidden-body": '<html><body style="display:none"><p>Hi</p></body></html>',
    "hidden-body-merged-later": "<html><body><p>Hi</p></body><body hidden></html>",
    # Markup where Python's html.parser and a browser disagree; the browser's reading hides.
    "space-in-end-tag": "<p>Hi</p><div hidden>x</ div></body></html>",
    "end-tag-with-attribute": '<p>Hi</p><div hidden>x</b x="a></div>"></body></html>',
    "abrupt-empty-comment": "<p>Hi</p><!--> <div hidden> --></body></html>",
    "comment-bang-close": "<p>Hi</p><!-- x --!> <div hidden> --></body></html>",
    "comment-spaced-close": "<p>Hi</p><!-- x -- ></body></html>",
    "marked-section": "<p>Hi</p><![if x> <div hidden> ]></body></html>",
    "svg-style-breakout": "<p>Hi</p><svg><style><div hidden></style></svg></body></html>",
    "script-double-escape": "<p>Hi</p><script><!--<script></script>x</body></html>",
    "formatting-reopened": '<p><b style="display:none">x</p>y</body></html>',
    "end-tag-across-table": "<div hidden><table><tr><td>x</div></body></html>",
    "plaintext": "<p>Hi</p><plaintext></body></html>",
}


@pytest.mark.parametrize("markup", HIDDEN_AT_THE_END.values(), ids=HIDDEN_AT_THE_END.keys())
def test_mime5_hidden_insertion_point_is_wrapped(markup: str) -> None:
    src = html_message(markup)
    result = add_notice(src, NOTICE)
    assert_wrapped_intact(src, result.content, result.action)


# A notice already there, but inside something that hides it: it does not count.
HIDDEN_NOTICE = {
    "in-open-display-none": '<p>Hi</p><div style="display:none">' + BLOCK + "</body></html>",
    "in-open-comment": "<p>Hi</p><!--" + BLOCK,
    "in-open-style": "<p>Hi</p><style>" + BLOCK + "</body></html>",
    "in-open-title": "<title>" + BLOCK + "</body></html>",
}


@pytest.mark.parametrize("markup", HIDDEN_NOTICE.values(), ids=HIDDEN_NOTICE.keys())
def test_mime5_hidden_notice_does_not_count_as_present(markup: str) -> None:
    src = html_message(markup)
    result = add_notice(src, NOTICE)
    assert_wrapped_intact(src, result.content, result.action)


# Ordinary HTML mail: hidden things are closed before the insertion point, so it goes in.
VISIBLE = {
    "preheader-closed": (
        "<html><head><style>p { margin: 0 }</style><title>Visit</title></head><body>"
        '<div style="display:none;max-height:0;overflow:hidden">Preview</div><p>Hi</p>'
        "</body></html>"
    ),
    "outlook-conditionals": (
        "<html><head><!--[if gte mso 9]><xml><o:OfficeDocumentSettings>"
        "</o:OfficeDocumentSettings></xml><![endif]--></head><body lang=EN-GB>"
        "<p><![if !supportLists]>1.<![endif]>Item</p></body></html>"
    ),
    "p-closed-by-div": "<html><body><div hidden><p>x</div><p>Hi</p></body></html>",
    "head-closed-by-body": "<html><head><meta charset=utf-8><body><p>Hi</p></body></html>",
    "no-body-tags": '<div dir="ltr">Hi<br></div>',
    "script-closed": "<p>Hi</p><script>if (a < b) x();</script></body></html>",
}


@pytest.mark.parametrize("markup", VISIBLE.values(), ids=VISIBLE.keys())
def test_normal_flow_gets_the_notice_inserted(markup: str) -> None:
    src = html_message(markup)
    result = add_notice(src, NOTICE)
    assert result.action == "inserted"
    text = markup + "\r\n"
    close = text.rfind("</body>")
    at = close if close >= 0 else len(text)
    lead = "" if text[:at].endswith("\n") else "\r\n"
    assert result.content.split(b"\r\n\r\n", 1)[1].decode() == text[:at] + lead + BLOCK + text[at:]
    assert_every_view_sees_one_notice(result.content)
    again = add_notice(result.content, NOTICE)
    assert again.action == "present" and again.content == result.content


def test_a_visible_notice_counts_as_present() -> None:
    src = html_message("<html><body><p>Hi</p>\r\n" + BLOCK + "</body></html>")
    result = add_notice(src, NOTICE)
    assert result.action == "present" and result.content == src


def alternative(*parts: bytes) -> bytes:
    body = b"".join(b"--alt-b\r\n" + p + b"\r\n" for p in parts)
    return (
        HEAD
        + b'Content-Type: multipart/alternative; boundary="alt-b"\r\n\r\n'
        + body
        + (b"--alt-b--\r\n")
    )


PLAIN = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSee you on Saturday.\r\n"
HTML = b"Content-Type: text/html; charset=us-ascii\r\n\r\n<p>See you on Saturday.</p>\r\n"
OTHERS = {
    "amp": b"Content-Type: text/x-amp-html; charset=utf-8\r\n\r\n<html amp4email><body>"
    b"<p>See you on Saturday.</p></body></html>\r\n",
    "enriched": b"Content-Type: text/enriched\r\n\r\n<bold>See you</bold> on Saturday.\r\n",
    "watch-html": b"Content-Type: text/watch-html\r\n\r\n<b>See you on Saturday.</b>\r\n",
    "markdown": b"Content-Type: text/markdown; charset=utf-8\r\n\r\n**See you** Saturday.\r\n",
}


@pytest.mark.parametrize("other", OTHERS.values(), ids=OTHERS.keys())
def test_mime6_an_alternative_we_do_not_edit_is_not_left_without_the_notice(other: bytes) -> None:
    for src in (alternative(PLAIN, other, HTML), alternative(PLAIN, HTML, other)):
        result = add_notice(src, NOTICE)
        assert_wrapped_intact(src, result.content, result.action)
        assert other in result.content  # kept byte for byte inside the wrapper


def test_mime6_nested_alternative_with_an_unedited_part_is_wrapped() -> None:
    inner = (
        b'Content-Type: multipart/alternative; boundary="in-b"\r\n\r\n--in-b\r\n'
        + HTML
        + b"\r\n--in-b\r\n"
        + OTHERS["amp"]
        + b"\r\n--in-b--"
    )
    src = alternative(PLAIN, inner)
    result = add_notice(src, NOTICE)
    assert_wrapped_intact(src, result.content, result.action)


def test_plain_and_html_alternatives_are_still_edited_in_place() -> None:
    src = alternative(PLAIN, HTML)
    result = add_notice(src, NOTICE)
    assert result.action == "inserted" and result.parts == 2
    assert_every_view_sees_one_notice(result.content)


async def test_mime5_html_hiding_the_insertion_point_arrives_wrapped(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    markup = '<html><body><p>See you</p><div style="display:none">preview</body></html>'
    _, content = await relay(start_gateway, upstream, html_message(markup))
    assert parse(content).get_content_type() == "multipart/mixed"
    assert b"\r\n\r\n" + markup.encode() + b"\r\n" in content  # the HTML as sent


async def test_mime6_amp_alternative_arrives_wrapped(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    _, content = await relay(start_gateway, upstream, alternative(PLAIN, OTHERS["amp"], HTML))
    assert parse(content).get_content_type() == "multipart/mixed"
    assert OTHERS["amp"] in content
