"""The mandatory confidentiality notice, added to the body text of every message.

Policy, "Transmitting information": every email "should include" the two paragraphs kept in
``config/disclaimer.txt``. The notice goes at the end of each body text part (both
alternatives of a multipart/alternative, the HTML root of a multipart/related), never into
attachments or a forwarded message/rfc822. Each edited part keeps its transfer encoding and
charset (UTF-8 only when the charset cannot carry the notice); everything else stays
byte-identical. Signed or encrypted mail, mail without body text and text we cannot decode
are wrapped in multipart/mixed with the notice as a part of its own, so signatures still
verify. No header the client sends can switch the notice off: only the notice already at
the end of a part (the message passed through twice) stops a second copy.
"""

from __future__ import annotations

import asyncio
import bisect
import codecs
import functools
import hashlib
import html
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from gateway import mime
from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.headers import CRLF, HeaderField, fields_named
from gateway.mime import Entity, MimeError
from gateway.pipeline import FilterContext

log = structlog.get_logger("filters.disclaimer")

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "disclaimer.txt"
SIGNED_CHOICES = ("wrap", "refuse")
# RFC 1847, RFC 3156 (PGP/MIME), RFC 8551 (S/MIME): any change inside breaks the signature.
PROTECTED = frozenset(
    {
        "multipart/signed",
        "multipart/encrypted",
        "application/pkcs7-mime",
        "application/x-pkcs7-mime",
    }
)
# Python codecs no mail client knows: treat as unknown charsets (codecs.lookup names).
_PSEUDO_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
_THREAD_THRESHOLD = 1 << 20  # larger messages are edited off the event loop
WIDTH = 72  # RFC 3676 4.2 suggests 72 at most; room for <p> within a 76-column QP line


@dataclass(frozen=True)
class Notice:
    """The notice's paragraphs, and how it looks in plain text, flowed text and HTML."""

    paragraphs: tuple[str, ...]

    @classmethod
    def load(cls, path: Path, where: str = "notice") -> Notice:
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

    def ends_html(self, text: str, nl: str) -> bool:
        block = _collapse(self.html(nl))
        return _collapse(text[-(4 * len(block) + 256) :]).endswith(block)

    def part(self) -> bytes:
        """The text/plain part that follows a wrapped message."""
        text = self.plain("\r\n")
        charset, cte = ("us-ascii", "7bit") if text.isascii() else ("utf-8", "quoted-printable")
        body = mime.encode_body(text.encode(charset), cte)
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


@dataclass(frozen=True)
class Result:
    content: bytes
    action: str  # "inserted", "wrapped" or "present"
    parts: int  # body text parts edited (1 for a wrap)


class _Wrap(Exception):
    """The body text cannot be edited in place; ``reason`` is a log-safe code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Edit = tuple[int, int, bytes]  # replace content[start:end] with the bytes


def add_notice(content: bytes, notice: Notice, signed: str = "wrap") -> Result:
    """Return ``content`` with the notice in every body text part. Raises Refused."""
    if b"\x00" in content:  # RFC 5322 2.3: NUL is never allowed; readers disagree on it
        raise _refused("the message contains NUL bytes", "nul")
    try:
        root = mime.parse(content)
    except MimeError as exc:
        raise _refused(exc.text, exc.slug) from exc
    edits: list[Edit] = []
    try:
        parts = _body_parts(root)
        if not parts:
            raise _Wrap("protected" if _has_protected(root) else "no-text")
        for part in parts:
            edit = _edit_part(content, part, notice)
            if edit is not None:
                edits.append(edit)
    except _Wrap as w:
        if w.reason == "protected" and signed == "refuse":
            raise Refused(
                554,
                "5.6.0",
                "Signed or encrypted mail cannot carry the required confidentiality notice; "
                "send it unsigned and unencrypted",
                reference="NOTICE-SIGNED",
            ) from w
        return Result(_wrap(content, root, notice), "wrapped", 1)
    if not edits:
        return Result(content, "present", 0)
    return Result(_apply(content, edits), "inserted", len(edits))


def _refused(reason: str, slug: str) -> Refused:
    log.info("disclaimer_unreadable", reason=slug)  # a fixed code: nothing from the message
    return Refused(
        554,
        "5.6.0",
        f"Cannot add the required confidentiality notice safely: {reason}",
        reference="NOTICE-MIME",
    )


# --- which parts are the body text ---


def _body_parts(e: Entity) -> list[Entity]:
    """The parts a reader sees as the message text (RFC 2046 5.1.3, RFC 2387)."""
    if e.ctype in PROTECTED:
        return []
    if e.maintype == "multipart":
        if e.subtype == "alternative":
            found: list[Entity] = []
            for c in e.children:
                inner = _body_parts(c)
                if not inner and _has_protected(c):
                    raise _Wrap("protected")  # a reader may show that alternative
                found.extend(inner)
            return found
        if e.subtype == "related":
            root = _related_root(e)
            return _body_parts(root) if root is not None else []
        # mixed, and unknown subtypes as mixed (RFC 2046 5.1.7): the text shown last.
        for c in reversed(e.children):
            inner = _body_parts(c)
            if inner:
                return inner
        return []
    if e.maintype == "text" and e.subtype in ("plain", "html") and not e.is_attachment:
        return [e]
    return []  # attachments, message/rfc822 (never edited inside), other media


def _related_root(e: Entity) -> Entity | None:
    start = e.params.get("start", "").strip()  # RFC 2387 3.2: a Content-ID, else the first
    for c in e.children:
        if start and c.content_id == start:
            return c
    return e.children[0] if e.children else None


def _has_protected(e: Entity) -> bool:
    return any(x.ctype in PROTECTED for x in e.walk())


# --- editing one body text part ---


def _edit_part(buf: bytes, part: Entity, notice: Notice) -> Edit | None:
    body = buf[part.body_start : part.end]
    try:
        old = mime.decode_body(body, part.cte)
    except MimeError as exc:
        raise _Wrap("undecodable") from exc
    codec = _codec(part.params.get("charset", "") or "us-ascii")  # RFC 2045 5.2 default
    if codec is None:
        raise _Wrap("charset")
    try:
        text = old.decode(codec)
    except (UnicodeError, LookupError) as exc:  # LookupError: not a text codec ("base64")
        raise _Wrap("charset") from exc
    nl = "\r\n" if part.cte in mime.IDENTITY or "\r\n" in text or "\n" not in text else "\n"
    if part.subtype == "html":
        at, hidden = _html_insertion_point(text)
        before = text[:at]
        block = notice.html(nl)
        if notice.ends_html(before, nl):
            return None
        if hidden:
            block = "-->" + nl + block  # close the unterminated comment that would hide it
        lead = nl if before and not before.endswith("\n") else ""
    else:
        at = len(text)
        if notice.ends_plain(text):
            return None
        flowed = part.params.get("format", "").lower() == "flowed"  # RFC 3676
        block = notice.plain(nl, flowed, part.params.get("delsp", "").lower() == "yes")
        lead = "" if not text else nl if text.endswith("\n") else nl + nl
    insert = lead + block
    new, charset = _encode_text(old, text, at, insert, codec)
    cte = part.cte
    if cte == "7bit" and old.isascii() and not new.isascii():
        cte = "quoted-printable"  # RFC 2045 2.7: 7bit data is ASCII only
    elif charset and cte in mime.IDENTITY and _longest_line(new) > 998:
        cte = "quoted-printable"  # RFC 5322 2.1.1, after re-encoding as UTF-8
    if not charset and cte == part.cte and part.separated:
        new_body = mime.splice_encoded(body, cte, old, new)
        return _minimal_edit(part.body_start, body, new_body)
    head = _mime_fields(part, charset, cte if cte != part.cte else None)
    new_body = mime.encode_body(new, cte, mime.b64_width(body))
    return (part.start, part.end, head + CRLF + new_body)


def _codec(charset: str) -> str | None:
    try:
        name = codecs.lookup(charset.strip().strip('"').lower()).name
    except LookupError:
        return None
    return None if name in _PSEUDO_CHARSETS else name


def _encode_text(old: bytes, text: str, at: int, insert: str, codec: str) -> tuple[bytes, str]:
    """Bytes of ``text`` with ``insert`` at ``at``: the original bytes kept when the charset
    allows it, else re-encoded; ("utf-8" as the second value) when it cannot carry them."""
    want = text[:at] + insert + text[at:]
    try:
        p = len(old) if at == len(text) else len(text[:at].encode(codec))
        cand = old[:p] + insert.encode(codec) + old[p:]
        if cand.decode(codec) == want:  # stateful charsets (ISO-2022-JP, UTF-16) may differ
            return cand, ""
    except UnicodeError:
        pass
    try:
        cand = want.encode(codec)
        if cand.decode(codec) == want:
            return cand, ""
    except UnicodeError:
        pass
    return want.encode("utf-8"), "utf-8"


_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)


def _html_insertion_point(text: str) -> tuple[int, bool]:
    """Before the last ``</body>`` outside a comment, else the end; and whether that end is
    inside an unterminated comment (which would hide what follows)."""
    spans = [(m.start(), m.end()) for m in _COMMENT.finditer(text)]
    starts = [s for s, _ in spans]

    def inside(pos: int) -> bool:
        k = bisect.bisect_right(starts, pos) - 1
        if k < 0:
            return False
        s, e = spans[k]
        return s < pos < e or (pos == e == len(text) and not text[s:].endswith("-->"))

    for m in reversed(list(_BODY_CLOSE.finditer(text))):
        if not inside(m.start()):
            return m.start(), False
    return len(text), inside(len(text))


def _longest_line(data: bytes) -> int:
    return max((len(line) for line in data.split(CRLF)), default=0)


def _minimal_edit(offset: int, old: bytes, new: bytes) -> Edit:
    head = mime.common_prefix(old, new)
    tail = mime.common_suffix(old, new, min(len(old), len(new)) - head)
    return (offset + head, offset + len(old) - tail, new[head : len(new) - tail])


_CHARSET = re.compile(rb'(;\s*charset\s*=\s*)("[^"\r\n]*"|[^;\s]*)', re.IGNORECASE)


def _mime_fields(part: Entity, charset: str, cte: str | None) -> bytes:
    """The part's header section with the charset and transfer encoding changed."""
    out: list[HeaderField] = []
    new_ct = new_cte = False
    for f in part.fields:
        if f.key == "content-type" and charset:
            out.append(_with_charset(f, part, charset))
            new_ct = True
        elif f.key == "content-transfer-encoding" and cte:
            out.append(_field(f.name.decode("latin-1"), cte))
            new_cte = True
        else:
            out.append(f)
    added: list[HeaderField] = []
    if charset and not new_ct:
        added.append(_field("Content-Type", f"{part.ctype}; charset={charset}"))
    if cte and not new_cte:
        added.append(_field("Content-Transfer-Encoding", cte))
    if added and part.start == 0 and not fields_named(part.fields, "mime-version"):
        added.insert(0, _field("MIME-Version", "1.0"))  # RFC 2045 4
    return b"".join(f.raw for f in [*out, *added])


def _field(name: str, value: str) -> HeaderField:
    # latin-1 gives back the exact bytes of values read with latin-1 (mime.parse_params).
    return HeaderField(name.encode("latin-1"), f"{name}: {value}".encode("latin-1") + CRLF)


def _with_charset(f: HeaderField, part: Entity, charset: str) -> HeaderField:
    raw, n = _CHARSET.subn(lambda m: m.group(1) + charset.encode("ascii"), f.raw, count=1)
    if not n:
        raw = raw[:-2] + b";" + CRLF + b" charset=" + charset.encode("ascii") + CRLF
    new = HeaderField(f.name, raw)
    try:
        _, params = mime.parse_params(new.value.decode("latin-1"))
    except MimeError:
        params = {}
    if params == {**part.params, "charset": charset}:
        return new
    # The raw edit changed more than the charset (an odd field): write the field afresh.
    params = {**part.params, "charset": charset}
    text = ";\r\n\t".join([part.ctype, *(_param(k, v) for k, v in params.items())])
    return _field(f.name.decode("latin-1").strip(), text)


def _param(name: str, value: str) -> str:
    if name.endswith("*"):  # RFC 2231 extended value: never quoted
        return f"{name}={value}"
    return '{}="{}"'.format(name, value.replace("\\", "\\\\").replace('"', '\\"'))


def _apply(content: bytes, edits: list[Edit]) -> bytes:
    out: list[bytes] = []
    pos = 0
    for start, end, data in sorted(edits, key=lambda e: (e[0], e[1])):
        if start < pos:
            raise RuntimeError("overlapping disclaimer edits")  # a bug: fail closed (451)
        out += [content[pos:start], data]
        pos = end
    out.append(content[pos:])
    return b"".join(out)


# --- wrapping the whole message ---


def _wrap(content: bytes, root: Entity, notice: Notice) -> bytes:
    """``multipart/mixed``: the original entity untouched, then the notice (RFC 2046 5.1.3)."""
    boundary = _new_boundary(content)
    mime_fields = [f for f in root.fields if f.key.startswith("content-")]
    top: list[bytes] = []
    new_type = [b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + CRLF]
    if root.cte in ("8bit", "binary"):  # RFC 2045 6.4: say what the parts contain
        new_type.append(b"Content-Transfer-Encoding: " + root.cte.encode() + CRLF)
    if not fields_named(root.fields, "mime-version"):
        new_type.insert(0, b"MIME-Version: 1.0" + CRLF)
    for f in root.fields:
        if f.key.startswith("content-"):
            top += new_type
            new_type = []
        else:
            top.append(f.raw)
    top += new_type
    body = content[root.body_start :] if root.separated else b""
    delim = b"--" + boundary
    return b"".join(
        [
            *top,
            CRLF,
            delim + CRLF,
            *(f.raw for f in mime_fields),
            CRLF,
            body,
            CRLF + delim + CRLF,
            notice.part(),
            CRLF + delim + b"--" + CRLF,
        ]
    )


def _new_boundary(content: bytes) -> bytes:
    """Derived from the content (so output is reproducible) and checked absent from it."""
    digest = hashlib.sha256(content).hexdigest()[:24]
    n = 0
    while True:
        b = f"=_c4f_notice_{digest}_{n}".encode("ascii")
        if b not in content:
            return b
        n += 1


# --- the filter ---


class DisclaimerFilter:
    name = "disclaimer"

    def __init__(self, notice: Notice, signed: str = "wrap") -> None:
        self.notice = notice
        self.signed = signed

    def apply(self, content: bytes) -> Result:
        return add_notice(content, self.notice, self.signed)

    async def on_data(self, tx: Transaction, content: bytes) -> bytes:
        try:
            if len(content) > _THREAD_THRESHOLD:
                result = await asyncio.to_thread(self.apply, content)
            else:
                result = self.apply(content)
        except Refused as r:
            log.info("disclaimer_refused", queue_id=tx.queue_id, reference=r.reference)
            raise
        tx.annotations["disclaimer"] = result.action
        log.info("disclaimer", queue_id=tx.queue_id, action=result.action, parts=result.parts)
        return result.content


def create(options: dict[str, Any], context: FilterContext) -> DisclaimerFilter:
    settings = context.settings
    where = f"{getattr(settings, 'source', 'config')}: filter.disclaimer"
    for key in options:
        if key not in ("file", "signed"):
            raise ConfigError(f"{where}.{key}: unknown option")
    signed = options.get("signed", "wrap")
    if signed not in SIGNED_CHOICES:
        raise ConfigError(f"{where}.signed: must be 'wrap' or 'refuse', not {signed!r}")
    path = DEFAULT_FILE
    if "file" in options:
        if not isinstance(options["file"], str) or not options["file"]:
            raise ConfigError(f"{where}.file: expected a path")
        path = Path(options["file"])
        if not path.is_absolute():
            path = Path(getattr(settings, "base_dir", Path.cwd())) / path
    return DisclaimerFilter(Notice.load(path, f"{where}.file"), signed)
