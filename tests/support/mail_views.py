"""What a mail reader shows: the views of a message and the notices visible in each.

An independent reader for the disclaimer tests, built on the ``email`` package and
``html.parser`` only (never on gateway code). A *view* is one way a reader may show the
message: the inline parts it displays, in order, having picked one alternative of each
multipart/alternative (RFC 2046 5.1.4), the root of each multipart/related (RFC 2387) and
the signed content of multipart/signed (RFC 1847). Attachments are not part of a view.

In HTML, text counts as seen only outside elements a browser does not render (``<head>``,
``<style>``, ``<script>``, ``<title>``, ``<template>``, comments, …) and outside elements
hidden by the ``hidden`` attribute or an inline ``display:none`` / ``visibility:hidden``.
Markup left open at the end hides what follows it, as in a browser.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from email.message import EmailMessage
from html.parser import HTMLParser

MAX_VIEWS = 256
UNRENDERED = frozenset(
    {"head", "style", "script", "title", "template", "noscript", "textarea", "select", "xmp"}
    | {"iframe", "noembed", "noframes", "object", "svg", "math", "plaintext"}
)
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"param", "track", "wbr"}
)
_HIDING_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*(hidden|collapse)|mso-hide\s*:\s*all", re.I
)


def parse(content: bytes) -> EmailMessage:
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def is_attachment(part: EmailMessage) -> bool:
    return part.get_content_disposition() == "attachment" or part.get_filename() is not None


def views(part: EmailMessage) -> list[list[EmailMessage]]:
    """Every combination of parts a reader may show (at most ``MAX_VIEWS``)."""
    if part.get_content_maintype() == "multipart":
        children = [c for c in part.iter_parts() if isinstance(c, EmailMessage)]
        subtype = part.get_content_subtype()
        if subtype == "alternative":
            return [v for c in children for v in views(c)][:MAX_VIEWS] or [[]]
        if subtype == "related":
            start = str(part.get_param("start", "") or "")
            roots = [c for c in children if start and c.get("Content-ID", "") == start]
            return views((roots or children)[0]) if children else [[]]
        if subtype == "signed":
            return views(children[0]) if children else [[]]
        if subtype == "encrypted":
            return [[]]
        out: list[list[EmailMessage]] = [[]]
        for c in children:
            if is_attachment(c):
                continue
            out = [a + b for a in out for b in views(c)][:MAX_VIEWS]
        return out
    if part.get_content_type() == "message/rfc822" and not is_attachment(part):
        inner = part.get_content()
        return views(inner) if isinstance(inner, EmailMessage) else [[]]
    if part.get_content_maintype() == "text" and not is_attachment(part):
        return [[part]]
    return [[]]


def collapse(text: str) -> str:
    return " ".join(text.split())


def shown_text(part: EmailMessage) -> str:
    """The text a reader sees in a text part (HTML: its rendered text), collapsed."""
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = raw.decode(charset, "replace")
    except LookupError:  # a charset Python does not know: no notice of ours is in it
        text = raw.decode("latin-1")
    if part.get_content_subtype() == "html":
        return collapse(visible_html_text(text))
    if part.get_content_type() == "text/plain":
        return collapse(text)
    return ""  # other text/* (enriched, calendar, AMP): never carries our notice


def notices_seen(view: list[EmailMessage], words: str) -> int:
    """How many times the notice's words are seen in one view."""
    needle = collapse(words)
    return sum(shown_text(p).count(needle) for p in view)


def visible_html_text(text: str) -> str:
    reader = _VisibleText()
    reader.feed(text)  # no close(): what is left unterminated at the end stays unread
    return "".join(reader.chunks)


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[tuple[str, bool]] = []  # (tag, hides what it contains)
        self.chunks: list[str] = []

    def hidden(self) -> bool:
        return any(h for _, h in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.chunks.append(" ")
        if tag == "body" and self.stack and self.stack[-1][0] == "head":
            self.stack.pop()  # <body> ends a <head> left open
        if tag in VOID or tag in ("html", "body"):
            return
        hides = tag in UNRENDERED or any(
            name == "hidden" or (name == "style" and _HIDING_STYLE.search(value or ""))
            for name, value in attrs
        )
        self.stack.append((tag, hides))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # HTML ignores "/>" on elements that are not void

    def handle_endtag(self, tag: str) -> None:
        self.chunks.append(" ")
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                del self.stack[k:]
                return

    def handle_data(self, data: str) -> None:
        if not self.hidden():
            self.chunks.append(data)

    def handle_entityref(self, name: str) -> None:
        self.handle_data(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.handle_data(html.unescape(f"&#{name};"))
