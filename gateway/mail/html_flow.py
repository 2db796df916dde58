"""Where added HTML is seen: judged with Python's ``html.parser``, never with a regex.

Policy, "Transmitting information": every email carries the notice, so in HTML it may go in
only where a browser renders it. Not inside an element that is never rendered (``<head>``,
``<style>``, ``<script>``, ``<title>``, ``<template>``, …), nor one hidden by the ``hidden``
attribute or an inline style (``display:none``, ``visibility:hidden``, ``mso-hide:all``, …),
nor in a comment or anything left unterminated at the end.

Python's parser is not a browser's (WHATWG HTML 13.2 "Parsing HTML documents"): it closes a
comment at ``-- >``, reads ``</ div>`` as an end tag, swallows ``<![if x> … ]>``, parses
markup inside ``<title>`` and ``<textarea>``, and knows nothing of implied end tags, scope or
reopened formatting elements. Wherever the two may read the markup differently, or the open
elements cannot be followed for certain, nothing is judged visible and the caller wraps the
message instead (the notice then travels as a part of its own).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

from gateway.mail.html_style import hides

NOTICE_CLASS = "c4f-notice"

# Never rendered, or not as page text: what is inside them is not seen (HTML 15.3.1).
_UNRENDERED = frozenset(
    {"head", "style", "script", "title", "template", "noscript", "noembed", "noframes"}
    | {"iframe", "textarea", "xmp", "select", "datalist", "option", "optgroup", "object"}
    | {"applet", "video", "audio", "canvas", "frameset", "meter", "progress", "rp"}
)
_CLOSED_ONLY_WHEN_OPEN = frozenset({"details", "dialog"})  # content hidden without "open"
# Foreign content and <plaintext> are tokenised by rules html.parser does not follow.
_UNFOLLOWABLE = frozenset({"plaintext", "svg", "math"})
_VOID = frozenset(
    {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image"}
    | {"img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr"}
)
# End tags that close everything above their element when it is in scope (HTML 13.2.6.4.7).
_CLOSES_ACROSS = frozenset(
    {"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir"}
    | {"div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup"}
    | {"listing", "main", "menu", "nav", "ol", "pre", "search", "section", "summary", "ul"}
    | {"p", "li", "dd", "dt"}
)
# Elements an end tag does not reach across (the scopes of HTML 13.2.4.2, merged).
_SCOPE_LIMITS = frozenset(
    {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"}
    | {"button", "ol", "ul", "select"}
)
_QUOTED = re.compile(r"=[\t\n\f\r ]*(?:\"[^\"]*\"|'[^']*')")
_UNCLOSED_VALUE = re.compile(r"=[\t\n\f\r ]*[\"']")
_PLAIN_END_TAG = re.compile(r"</[A-Za-z][^\t\n\f\r />]*[\t\n\f\r ]*>")


@dataclass(frozen=True)
class Flow:
    """Where a block added to the HTML is seen, and where a seen notice starts."""

    insertion_point: int | None  # before the last </body>, else the end; None: nowhere sure
    notices: tuple[int, ...]  # offsets of <div class="c4f-notice"> start tags that are seen


def read(text: str) -> Flow:
    reader = _Reader(text)
    try:
        reader.feed(text)
        while reader.rawdata and reader.progress():
            pass  # the parser stops at "&#" that is not a reference; go on past it
    except (_Unsure, AssertionError):  # AssertionError: a marked section _markupbase refuses
        return Flow(None, ())
    if reader.document_hidden:
        return Flow(None, ())
    # No close(): it would turn an unterminated comment or tag at the end into text.
    end_seen = not reader.rawdata.startswith("<") and not reader.hidden_at
    at: int | None = None
    if reader.body_closes and reader.body_closes[-1][1]:
        at = reader.body_closes[-1][0]
    elif end_seen:
        at = len(text)
    return Flow(at, tuple(pos for pos, seen in reader.notices if seen))


class _Unsure(Exception):
    """Browsers may read this markup differently from html.parser, or from our stack."""


@dataclass
class _Open:
    tag: str
    hides: bool


class _Reader(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.stack: list[_Open] = []
        self.names: Counter[str] = Counter()
        self.hidden_at: list[int] = []  # stack indices of elements that hide their content
        self.document_hidden = False  # <html> or <body> (attributes merge, HTML 13.2.6.4.7)
        self.body_closes: list[tuple[int, bool]] = []
        self.notices: list[tuple[int, bool]] = []

    def progress(self) -> bool:
        before = len(self.rawdata)
        self.goahead(False)
        return len(self.rawdata) < before

    def position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    # -- tags ------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if _UNCLOSED_VALUE.search(_QUOTED.sub("", self.get_starttag_text() or "")):
            # html.parser ended the tag at a ">" inside a quoted value; a browser reads the
            # value on to the next quote, taking in what follows (the notice, too).
            raise _Unsure
        if tag in ("html", "body"):
            self.document_hidden = self.document_hidden or hides(attrs)
            if tag == "body" and self.stack and self.stack[-1].tag == "head":
                self.pop(len(self.stack) - 1)  # <body> ends a <head> left open
            return
        if tag in _UNFOLLOWABLE:
            raise _Unsure
        if tag in _VOID:
            return
        hidden = tag in _UNRENDERED or hides(attrs)
        if tag in _CLOSED_ONLY_WHEN_OPEN and not any(n == "open" for n, _ in attrs):
            hidden = True
        if tag == "div" and any(
            n == "class" and NOTICE_CLASS in (v or "").split() for n, v in attrs
        ):
            self.notices.append((self.position(), not self.hidden_at))
        if hidden:
            self.hidden_at.append(len(self.stack))
        self.stack.append(_Open(tag, hidden))
        self.names[tag] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # "/>" does not close an HTML element (13.2.5.1)

    def handle_endtag(self, tag: str) -> None:
        at = self.position()
        if not _PLAIN_END_TAG.match(self.text, at):
            raise _Unsure  # "</ div>", "</b x='>'>": browsers end it elsewhere
        if tag == "body":
            self.body_closes.append((at, not self.hidden_at))
            return  # a browser keeps every element open after </body>
        if tag == "html" or not self.names[tag]:
            return  # ignored by browsers (or an empty <p>): it hides nothing
        k = next(i for i in range(len(self.stack) - 1, -1, -1) if self.stack[i].tag == tag)
        above = self.stack[k + 1 :]
        if above and self.hidden_at and not self.closes_across(tag, above):
            raise _Unsure
        self.pop(k)

    @staticmethod
    def closes_across(tag: str, above: list[_Open]) -> bool:
        """Whether a browser surely closes ``above`` with the element: an end tag of a kind
        that closes across, with no scope limit in between, and nothing hidden that would be
        reopened (the active formatting elements, HTML 13.2.4.3)."""
        return tag in _CLOSES_ACROSS and not any(o.hides or o.tag in _SCOPE_LIMITS for o in above)

    def pop(self, k: int) -> None:
        for o in self.stack[k:]:
            self.names[o.tag] -= 1
        del self.stack[k:]
        while self.hidden_at and self.hidden_at[-1] >= k:
            self.hidden_at.pop()

    # -- everything else -------------------------------------------------------------------

    def handle_comment(self, data: str) -> None:
        at = self.position()
        if not self.text.startswith("<!--", at):
            return  # a bogus comment (<!x>, </3>): both end it at the first ">"
        closed_at = at + 4 + len(data)
        # HTML 13.2.5.43-52: "<!-->" and "<!--->" end at once, "--!>" ends too, "-- >" does
        # not; html.parser reads all four the other way.
        if (
            data.startswith((">", "->"))
            or "--!>" in data
            or not self.text.startswith("-->", closed_at)
        ):
            raise _Unsure

    def unknown_decl(self, data: str) -> None:
        # "<![...": a bogus comment to the first ">" for a browser, to "]>" for html.parser.
        if ">" in data:
            raise _Unsure

    def handle_data(self, data: str) -> None:
        if self.cdata_elem is None and data[:1] == "<" and data[1:2].isalpha():
            raise _Unsure  # a start tag html.parser gave up on; a browser would not
        if self.cdata_elem == "script" and "<!--" in data:
            raise _Unsure  # script data escape states (HTML 13.2.5.15-26)
