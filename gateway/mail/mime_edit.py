"""Byte-level MIME editing for the confidentiality notice: charsets, minimal edits, rewritten
MIME fields, and wrapping a whole message in multipart/mixed.

Everything here works on the exact bytes of a message (gateway.mail.mime's entities), so that
what is not edited stays byte-identical.
"""

from __future__ import annotations

import codecs
import hashlib
import re

from gateway.mail import mime, transfer
from gateway.mail.content import Content
from gateway.mail.disclaimer_notice import Notice
from gateway.mail.headers import CRLF, HeaderField, fields_named
from gateway.mail.mime import Entity, MimeError
from gateway.mail.splices import Edit

# Python codecs no mail client knows: treat as unknown charsets (codecs.lookup names).
_PSEUDO_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)


# RFC 2978 2.3: the characters of a charset name. Python's codec lookup is looser
# ("utf=-16" finds UTF-16), readers may not be: a name outside these is unknown.
_CHARSET_NAME = re.compile(r"[A-Za-z0-9!#$%&'+^_`{}~-]{1,40}")


def charset_codec(charset: str) -> str | None:
    name = charset.strip().strip('"')
    if not _CHARSET_NAME.fullmatch(name):
        return None
    try:
        name = codecs.lookup(name.lower()).name
    except LookupError:
        return None
    return None if name in _PSEUDO_CHARSETS else name


def encode_text(old: bytes, text: str, at: int, insert: str, codec: str) -> tuple[bytes, str]:
    """Bytes of ``text`` with ``insert`` at ``at``: the original bytes kept when the charset
    allows it, else re-encoded; ("utf-8" as the second value) when it cannot carry them."""
    if at == len(text) and _stateless(codec):
        # Appended in a charset without shift states or byte order marks: the old bytes
        # (which decoded to ``text``) followed by the insert's are the text and the insert,
        # with no decoding of the whole body again to prove it.
        try:
            return old + insert.encode(codec), ""
        except UnicodeError:
            pass  # the charset cannot carry the insert: as below
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


def _stateless(codec: str) -> bool:
    """A codec name (``codecs.lookup``) whose encodings simply concatenate: US-ASCII, UTF-8
    and the single-byte charsets mail uses."""
    return codec in ("ascii", "utf-8") or codec.startswith(("iso8859-", "cp125", "koi8-"))


def longest_line(data: bytes) -> int:
    return max((len(line) for line in data.split(CRLF)), default=0)


def minimal_edit(offset: int, old: bytes, new: bytes) -> Edit:
    head = transfer.common_prefix(old, new)
    tail = transfer.common_suffix(old, new, min(len(old), len(new)) - head)
    return (offset + head, offset + len(old) - tail, new[head : len(new) - tail])


# Blanks, folding included, but never the field's final CRLF: "charset=" with no value at
# the end of the field must not swallow it (found by the MIME-4 long run).
_WSP = rb"(?:[ \t]|\r\n[ \t])*"
_CHARSET = re.compile(
    rb"(;" + _WSP + rb"charset" + _WSP + rb"=" + _WSP + rb')("[^"\r\n]*"|[^;\s]*)', re.IGNORECASE
)


def mime_fields(part: Entity, charset: str, cte: str | None) -> bytes:
    """The part's header section with the charset and transfer encoding changed."""
    out: list[HeaderField] = []
    new_ct = new_cte = False
    for f in part.fields:
        if f.key == "content-type" and charset:
            out.append(with_charset(f, part, charset))
            new_ct = True
        elif f.key == "content-transfer-encoding" and cte:
            out.append(mime_field(f.name.decode("latin-1"), cte))
            new_cte = True
        else:
            out.append(f)
    added: list[HeaderField] = []
    if charset and not new_ct:
        added.append(mime_field("Content-Type", f"{part.ctype}; charset={charset}"))
    if cte and not new_cte:
        added.append(mime_field("Content-Transfer-Encoding", cte))
    if added and part.start == 0 and not fields_named(part.fields, "mime-version"):
        added.insert(0, mime_field("MIME-Version", "1.0"))  # RFC 2045 4
    return b"".join(f.raw for f in [*out, *added])


def mime_field(name: str, value: str) -> HeaderField:
    # latin-1 gives back the exact bytes of values read with latin-1 (mime.parse_params).
    return HeaderField(name.encode("latin-1"), f"{name}: {value}".encode("latin-1") + CRLF)


def with_charset(f: HeaderField, part: Entity, charset: str) -> HeaderField:
    raw, n = _CHARSET.subn(lambda m: m.group(1) + charset.encode("ascii"), f.raw, count=1)
    if not n:
        raw = raw[:-2] + b";" + CRLF + b" charset=" + charset.encode("ascii") + CRLF
    new = HeaderField(f.name, raw)
    try:
        kind, params = mime.parse_params(new.value.decode("latin-1"))
    except MimeError:
        kind, params = "", {}
    if kind == part.ctype and params == {**part.params, "charset": charset}:
        return new
    # The raw edit changed more than the charset (an odd field), or the type was unreadable
    # ("text", RFC 2045 5.2) and would stay so: write the field afresh.
    params = {**part.params, "charset": charset}
    text = ";\r\n\t".join([part.ctype, *(mime_param(k, v) for k, v in params.items())])
    return mime_field(f.name.decode("latin-1").strip(), text)


def mime_param(name: str, value: str) -> str:
    if name.endswith("*"):  # RFC 2231 extended value: never quoted
        return f"{name}={value}"
    return '{}="{}"'.format(name, value.replace("\\", "\\\\").replace('"', '\\"'))


def wrap_with_part(content: Content, root: Entity, notice: Notice) -> list[Edit]:
    """``multipart/mixed``: the original entity untouched, then the notice (RFC 2046 5.1.3).
    Two edits: the header section becomes the new one and the first part's head; the
    notice part and the closing delimiter follow the body."""
    boundary = new_boundary(content)
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
    delim = b"--" + boundary
    # Without a blank line the whole message is its header section: the body is empty.
    head = b"".join([*top, CRLF, delim + CRLF, *(f.raw for f in mime_fields), CRLF])
    tail = b"".join([CRLF + delim + CRLF, notice.part(), CRLF + delim + b"--" + CRLF])
    return [(0, root.body_start, head), (len(content), len(content), tail)]


def new_boundary(content: Content) -> bytes:
    """Derived from the content (so output is reproducible) and checked absent from it."""
    digest = hashlib.sha256(content).hexdigest()[:24]
    n = 0
    while True:
        b = f"=_c4f_notice_{digest}_{n}".encode("ascii")
        if b not in content:
            return b
        n += 1
