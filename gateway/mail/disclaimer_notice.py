"""The confidentiality notice's text and how it looks in plain text, flowed text and HTML.

The wording is the policy's, word for word ("Transmitting information"), shipped in the
package as ``gateway/shipped/disclaimer.txt`` (read with :mod:`importlib.resources`, so it
is found in an installed wheel too); :mod:`filters.disclaimer` puts it into messages.
"""

from __future__ import annotations

import functools
import html
import re
import textwrap
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from gateway.errors import ConfigError
from gateway.mail import transfer

# The notice that ships with the gateway; [filter.disclaimer] file replaces it.
DEFAULT_FILE: Traversable = files("gateway") / "shipped" / "disclaimer.txt"
WIDTH = 72  # RFC 3676 4.2 suggests 72 at most; room for <p> within a 76-column QP line


@dataclass(frozen=True)
class Notice:
    """The notice's paragraphs, and how it looks in plain text, flowed text and HTML."""

    paragraphs: tuple[str, ...]

    @classmethod
    def load(cls, path: Path | Traversable, where: str = "notice") -> Notice:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: {path} is not UTF-8 text") from exc
        return cls.from_text(text, where)

    @classmethod
    def from_text(cls, text: str, where: str = "notice") -> Notice:
        """Paragraphs are separated by blank lines; lines within one are joined."""
        chunks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip())
        paragraphs = tuple(" ".join(c.split()) for c in chunks if c.strip())
        if not paragraphs:
            raise ConfigError(f"{where}: the notice is empty")
        if any(not p.isprintable() for p in paragraphs):
            raise ConfigError(f"{where}: the notice contains control characters")
        if any(len(w) > 200 for p in paragraphs for w in p.split()):
            raise ConfigError(f"{where}: the notice has a word over 200 characters")
        return cls(paragraphs)

    @property
    def words(self) -> str:
        return " ".join(self.paragraphs)

    def plain(self, nl: str = "\r\n", flowed: bool = False, delsp: bool = False) -> str:
        lines: list[str] = []
        for k, para in enumerate(self.paragraphs):
            if k:
                lines.append("")
            wrapped = _wrap_words(para)
            for j, line in enumerate(wrapped):
                if flowed:
                    if line.startswith((" ", ">", "From ")):
                        line = " " + line  # RFC 3676 4.4: space-stuffing
                    if j < len(wrapped) - 1:
                        line += "  " if delsp else " "  # RFC 3676 4.2: a soft line break
                lines.append(line)
        return nl.join(lines) + nl

    def html(self, nl: str = "\r\n") -> str:
        """An escaped block; non-ASCII as character references, so any charset carries it."""
        out = ['<div class="c4f-notice">']
        for para in self.paragraphs:
            lines = [html.escape(line, quote=False) for line in _wrap_words(para)]
            out.append("<p>" + nl.join(lines) + "</p>")
        out.append("</div>")
        text = nl.join(out) + nl
        return text.encode("ascii", "xmlcharrefreplace").decode("ascii")

    def ends_plain(self, text: str) -> bool:
        return _collapse(text[-(4 * len(self.words) + 256) :]).endswith(self.words)

    def is_html(self, text: str) -> bool:
        """Whether ``text`` is the HTML block (whatever its line breaks)."""
        block = _collapse(self.html())
        return len(text) <= 4 * len(block) + 256 and _collapse(text) == block

    def part(self) -> bytes:
        """The text/plain part that follows a wrapped message."""
        text = self.plain("\r\n")
        charset, cte = ("us-ascii", "7bit") if text.isascii() else ("utf-8", "quoted-printable")
        body = transfer.encode_body(text.encode(charset), cte)
        return (
            f"Content-Type: text/plain; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n"
            "Content-Disposition: inline\r\n"
            "Content-Description: Confidentiality notice\r\n\r\n"
        ).encode("ascii") + body


@functools.lru_cache(maxsize=64)
def _wrap_words(paragraph: str) -> tuple[str, ...]:
    return tuple(textwrap.wrap(paragraph, WIDTH, break_long_words=False, break_on_hyphens=False))


def _collapse(text: str) -> str:
    return " ".join(text.split())
