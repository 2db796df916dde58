"""What an approver reads before deciding: a message's text and its attachments.

Policy, "Disclosing information": a line manager approves a disclosure knowing what it
says. The text is shown as plain text only, never rendered: the text/plain body when
there is one, else the HTML body turned into text by Python's HTML parser (tags dropped,
scripts, styles and the head left out, entities decoded), so nothing in the message can
run or load in the reviewer's browser. Attachments are listed by name, type and size and
handed out only as downloads (:func:`attachment`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

from gateway.mail.content import Content

MAX_TEXT = 200_000  # characters shown; the rest is cut with a note
_BLOCK = frozenset("p div br li tr h1 h2 h3 h4 h5 h6 blockquote pre table ul ol hr".split())  # noqa: SIM905 (word list)
_HIDDEN = frozenset(("script", "style", "head", "title", "template"))


@dataclass(frozen=True)
class Attachment:
    number: int  # 1, 2, ... in the order the message carries them
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Readable:
    text: str
    from_html: bool  # the message had no plain-text body: this is its HTML as text
    attachments: list[Attachment]


def readable(content: Content) -> Readable:
    """The body as plain text and the list of attachments of ``content``."""
    msg = _parse(content)
    plain = html = None
    files: list[Attachment] = []
    for part, payload in _leaves(msg):
        kind = part.get_content_type()
        if _is_file(part):
            files.append(Attachment(len(files) + 1, _name(part), kind, len(payload)))
        elif kind == "text/plain" and plain is None:
            plain = _text(part, payload)
        elif kind == "text/html" and html is None:
            html = _text(part, payload)
    if plain is None and html is not None:
        return Readable(_cut(html_to_text(html)), True, files)
    return Readable(_cut(plain or ""), False, files)


def attachment(content: Content, number: int) -> tuple[Attachment, bytes] | None:
    """Attachment ``number`` (as :func:`readable` lists it) and its decoded bytes."""
    count = 0
    for part, payload in _leaves(_parse(content)):
        if _is_file(part):
            count += 1
            if count == number:
                info = Attachment(number, _name(part), part.get_content_type(), len(payload))
                return info, payload
    return None


def html_to_text(html: str) -> str:
    reader = _TextOf()
    reader.feed(html)
    reader.close()
    lines = [" ".join(line.split()) for line in "".join(reader.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(self.hidden - 1, 0)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def _parse(content: Content) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(content)
    assert isinstance(msg, EmailMessage)
    return msg


def _leaves(msg: EmailMessage) -> list[tuple[EmailMessage, bytes]]:
    out = []
    for part in msg.walk():
        if part.is_multipart() or not isinstance(part, EmailMessage):
            continue
        payload = part.get_payload(decode=True)
        out.append((part, payload if isinstance(payload, bytes) else b""))
    return out


def _is_file(part: EmailMessage) -> bool:
    return (
        part.is_attachment() or bool(part.get_filename()) or part.get_content_maintype() != "text"
    )


def _name(part: EmailMessage) -> str:
    return str(part.get_filename() or "(no name)")


def _text(part: EmailMessage, payload: bytes) -> str:
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n\n[... cut: {len(text) - MAX_TEXT:,} more characters]"
