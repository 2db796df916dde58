"""A byte-level MIME walker: where each part's headers and body lie in the original bytes.

Content filters edit a message by splicing new bytes in at known offsets, so untouched parts,
attachments, preamble and epilogue stay byte-identical (the ``email`` package re-folds and
re-encodes whatever it writes). Structure that cannot be read without guessing -- a boundary
line with trailing text, a missing close delimiter, two Content-Type fields -- raises
:class:`MimeError`: a receiving client may see a different structure from ours (MIME
smuggling), so such mail is refused, never edited by guesswork. Work per message is bounded:
at most ``MAX_PARTS`` parts and ``MAX_DEPTH`` levels; every scan is linear in the part size.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from gateway.mail.content import Content, bytes_of
from gateway.mail.headers import HeaderField, MalformedHeader, fields_named, split_message

CRLF = b"\r\n"
MAX_DEPTH = 20  # levels of multipart nesting (real mail rarely exceeds 5)
MAX_PARTS = 1000
IDENTITY = frozenset({"7bit", "8bit", "binary"})  # RFC 2045 6.2: no decoding needed


class MimeError(ValueError):
    """The structure cannot be read safely. ``slug`` is a fixed code fit for logs."""

    def __init__(self, slug: str, text: str) -> None:
        super().__init__(text)
        self.slug = slug
        self.text = text


@dataclass
class Entity:
    """One MIME entity; offsets index the whole message buffer."""

    start: int  # first header byte
    head_end: int  # end of the header fields (the blank line starts here when there is one)
    body_start: int
    end: int
    separated: bool  # a blank line ends the header section
    fields: list[HeaderField]
    maintype: str = "text"
    subtype: str = "plain"
    params: dict[str, str] = field(default_factory=dict)
    cte: str = "7bit"
    disposition: str = ""
    disposition_params: dict[str, str] = field(default_factory=dict)
    children: list[Entity] = field(default_factory=list)
    extended_boundary: bool = False  # given in RFC 2231 form (boundary*=, boundary*0=...)
    defaulted_type: bool = False  # "Content-Type: text", read as text/plain (RFC 2045 5.2)
    boundary: str = ""  # of a multipart part, as read (RFC 2231 forms decoded)

    @property
    def ctype(self) -> str:
        return f"{self.maintype}/{self.subtype}"

    @property
    def is_attachment(self) -> bool:
        """Marked as an attachment, or named (a file name makes clients list it as one)."""
        names = [*self.params, *self.disposition_params]
        named = any(n.split("*")[0] in ("name", "filename") for n in names)
        return self.disposition == "attachment" or named

    @property
    def content_id(self) -> str:
        found = fields_named(self.fields, "content-id")
        return found[0].value.decode("latin-1").strip() if found else ""

    def walk(self) -> list[Entity]:
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


def parse(content: Content) -> Entity:
    """Parse the MIME structure of a whole message (CRLF line ends). Raises MimeError."""
    return _Parser(content).entity(0, len(content), 0, "text/plain", ())


def parse_span(buf: Content, start: int, end: int) -> Entity:
    """Parse ``buf[start:end]`` as a whole message (a message/rfc822 part's body) in place:
    offsets index ``buf``. Raises MimeError."""
    return _Parser(buf).entity(start, end, 0, "text/plain", ())


class _Parser:
    def __init__(self, buf: Content) -> None:
        self.buf = buf
        self.count = 0

    def entity(
        self, start: int, end: int, depth: int, default: str, outer: tuple[bytes, ...]
    ) -> Entity:
        self.count += 1
        if self.count > MAX_PARTS:
            raise MimeError("too-many-parts", f"more than {MAX_PARTS} MIME parts")
        if depth > MAX_DEPTH:
            raise MimeError("too-deep", f"MIME parts nested more than {MAX_DEPTH} levels deep")
        buf = self.buf
        if buf.startswith(CRLF, start, end):
            head_end, body_start, separated = start, start + 2, True
        else:
            blank = buf.find(CRLF + CRLF, start, end)
            if blank < 0:
                head_end = body_start = end
                separated = False
            else:
                head_end, body_start, separated = blank + 2, blank + 4, True
        try:
            fields, _ = split_message(bytes_of(buf, start, head_end) + CRLF)
        except MalformedHeader as exc:
            raise MimeError("bad-header", f"malformed header: {exc}") from exc
        e = Entity(start, head_end, body_start, end, separated, fields)
        _read_content_fields(e, default)
        if e.maintype == "multipart":
            if e.cte not in IDENTITY:
                # RFC 2045 6.4: clients disagree on whether to decode such a part first.
                raise MimeError("encoded-multipart", "a multipart part has a transfer encoding")
            boundary = _boundary(e, outer)
            child_default = "message/rfc822" if e.subtype == "digest" else "text/plain"
            for s, t in _split(buf, body_start, end, boundary):
                e.children.append(self.entity(s, t, depth + 1, child_default, (*outer, boundary)))
        return e


def _read_content_fields(e: Entity, default: str) -> None:
    ctypes = fields_named(e.fields, "content-type")
    ctes = fields_named(e.fields, "content-transfer-encoding")
    disps = fields_named(e.fields, "content-disposition")
    if len(ctypes) > 1 or len(ctes) > 1 or len(disps) > 1:
        raise MimeError("duplicate-field", "a MIME part repeats a Content- header field")
    if ctypes:
        kind, e.params = parse_params(ctypes[0].value.decode("latin-1"))
        if kind == "text":
            # RFC 2045 5.2: a Content-Type that cannot be parsed means text/plain in US-ASCII;
            # readers do so for a missing subtype. Other parameters (a file name) still count.
            kind, e.defaulted_type = "text/plain", True
        elif kind.count("/") != 1 or not _TYPE.fullmatch(kind):
            raise MimeError("bad-content-type", "a Content-Type header field cannot be read")
        e.maintype, e.subtype = kind.split("/")
    else:
        e.maintype, e.subtype = default.split("/")
    if ctes:
        e.cte = ctes[0].value.decode("latin-1").strip().lower() or "7bit"
    if disps:
        kind, e.disposition_params = parse_params(disps[0].value.decode("latin-1"))
        e.disposition = kind


_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
# A quoted string, a separator, a run of ordinary text, or a stray quote (an error).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|;|[^";]+|"', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_QUOTED_VALUE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")
_UNIQUE = ("boundary", "charset", "format", "delsp", "start", "protocol")


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/sub; a=b; c="d"`` into the lower-case kind and parameters (RFC 2045 5.1).

    Linear in the length of the value (CPython's header parser is not: gh-136063).
    """
    segments: list[list[str]] = [[]]
    for m in _TOKEN.finditer(value):
        tok = m.group()
        if tok == '"':
            raise MimeError("bad-quote", "a Content- header field has an unclosed quote")
        if tok == ";":
            segments.append([])
        else:
            segments[-1].append(tok)
    kind = _COMMENT.sub("", "".join(segments[0])).strip().lower()
    if any("(" in tok for seg in segments[1:] for tok in seg if not tok.startswith('"')):
        # Readers take "(" as the start of a comment (RFC 5322 3.2.2) and, unclosed, as
        # running to the end of the field: a charset after it is gone for them but not
        # for us, and a notice in that charset is garbled (found by the MIME-4 fuzz).
        raise MimeError("bad-comment", "a Content- header field has a comment among its parameters")
    params: dict[str, str] = {}
    for seg in segments[1:]:
        text = "".join(seg)
        name, eq, raw = text.partition("=")
        name = name.strip().lower()
        base = name.split("*", 1)[0]
        if not name or (not eq and base not in _UNIQUE):
            continue  # lenient like most readers; only the parameters we use matter
        # A parameter we use given without a value ("charset;") is kept as empty: readers
        # disagree on whether it is set, so it must never be shadowed by one we append.
        raw = raw.strip()
        if '"' in raw and not _QUOTED_VALUE.fullmatch(raw):
            # 'charset=--"utf-8"': a quote inside a value is read one way by us and
            # another by readers (found by the MIME-4 fuzz): refused, as an unclosed quote.
            raise MimeError("bad-quote", "a Content- header field has a stray quote")
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
            raw = _ESCAPE.sub(r"\1", raw) if "\\" in raw else raw
        if name in params and base in _UNIQUE:
            raise MimeError("duplicate-param", f"a Content- header field repeats {name}=")
        params.setdefault(name, raw)
    return kind, params


def _boundary(e: Entity, outer: tuple[bytes, ...]) -> bytes:
    text, e.extended_boundary = _param_value(e.params, "boundary")
    e.boundary = text
    if not text or len(text) > 200 or not text.isascii() or not text.isprintable():
        raise MimeError("bad-boundary", "a multipart part has a missing or invalid boundary")
    b = text.encode("ascii")
    for o in outer:
        # RFC 2046 5.1.1: a boundary must not occur inside the parts it encloses.
        if o.startswith(b) or b.startswith(o):
            raise MimeError("nested-boundary", "a nested multipart reuses an enclosing boundary")
    return b


# RFC 2231 3 and 4: "name*" (extended), "name*N" and "name*N*" (continuations, N from 0).
_SECTION = re.compile(r"\*(?:(0|[1-9][0-9]{0,2})(\*)?)?")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _param_value(params: dict[str, str], name: str) -> tuple[str, bool]:
    """The value of ``name``, given plainly or in RFC 2231 form; and whether it was RFC 2231.

    Giving it both ways is refused: readers that know RFC 2231 and readers that do not would
    take different values.
    """
    single: str | None = None
    sections: dict[int, tuple[str, bool]] = {}
    for key, raw in params.items():
        if not key.startswith(name + "*"):
            continue
        m = _SECTION.fullmatch(key, len(name))
        if m is None:
            raise MimeError("bad-param", f"a Content- header field has an unknown {key}=")
        if m.group(1) is None:
            single = raw
        else:
            sections[int(m.group(1))] = (raw, m.group(2) is not None)
    plain = params.get(name)
    if (plain is not None) + (single is not None) + bool(sections) > 1:
        raise MimeError("duplicate-param", f"a Content- header field gives {name}= twice")
    if plain is not None:
        return plain, False
    if single is not None:
        return _decode_extended(single, first=True), True
    if sorted(sections) != list(range(len(sections))):
        raise MimeError("bad-param", f"the RFC 2231 sections of {name}= are incomplete")
    out = [
        _decode_extended(raw, first=n == 0) if encoded else raw
        for n, (raw, encoded) in sorted(sections.items())
    ]
    return "".join(out), bool(sections)


def _decode_extended(raw: str, first: bool) -> str:
    """RFC 2231 4: ``charset'language'%XX…`` (the prefix only in the first section).

    Returns the octets as latin-1 text; callers check the characters they allow."""
    if first:
        parts = raw.split("'", 2)
        if len(parts) != 3:
            raise MimeError("bad-param", "an RFC 2231 parameter value cannot be read")
        raw = parts[2]
    if _PERCENT.search(raw):
        raise MimeError("bad-param", "an RFC 2231 parameter value cannot be read")
    return urllib.parse.unquote_to_bytes(raw).decode("latin-1")


def _split(buf: Content, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Spans of the body parts of a multipart body (RFC 2046 5.1.1)."""
    delim = b"--" + boundary
    pattern = CRLF + delim
    if buf.startswith(delim, start, end):
        line = start
    else:
        found = buf.find(pattern, start, end)
        if found < 0:
            raise MimeError("no-boundary", "a multipart part has no boundary line")
        line = found + 2
    spans: list[tuple[int, int]] = []
    while True:
        j = line + len(delim)
        close = buf.startswith(b"--", j, end)
        if close:
            j += 2
        eol = buf.find(CRLF, j, end)
        if buf[j : end if eol < 0 else eol].strip(b" \t"):
            # "--boundaryX": some readers take it as a delimiter, some as text.
            raise MimeError("ambiguous-boundary", "a line extends a multipart boundary")
        if close:
            if eol >= 0 and buf.find(pattern, eol, end) >= 0:
                raise MimeError("ambiguous-boundary", "a boundary repeats after the close")
            return spans
        if eol < 0:
            raise MimeError("no-close", "a multipart part has no closing boundary")
        part_start = eol + 2
        nxt = buf.find(pattern, eol, end)
        if nxt < 0:
            raise MimeError("no-close", "a multipart part has no closing boundary")
        spans.append((part_start, max(nxt, part_start)))
        line = nxt + 2
