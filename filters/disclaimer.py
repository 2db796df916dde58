"""The mandatory confidentiality notice, added to the body text of every message.

Policy, "Transmitting information": every email "should include" the two paragraphs shipped
in ``gateway/shipped/disclaimer.txt``, and every reader must see them. The notice goes at the
end of each body text part (both alternatives of a multipart/alternative, the HTML root of a
multipart/related), never into attachments or a forwarded message/rfc822; in HTML only where
a browser shows it (:mod:`gateway.mail.html_flow`). Each edited part keeps its charset (UTF-8
only when the charset cannot carry the notice) and its transfer encoding unless the result
could not travel in it (UTF-16 marked 8bit: base64); everything else stays byte-identical.

The message is wrapped in multipart/mixed with the notice as a part of its own, the original
untouched, when editing in place could leave a reader without it: signed or encrypted mail
(so signatures still verify), mail without body text, text we cannot decode, HTML where no
place is surely seen, an alternative we do not edit (text/x-amp-html, text/enriched,
text/calendar…) and a boundary given in RFC 2231 form. No header the client sends can switch
the notice off: only the notice already at the end of a part, where it is seen (the message
passed through twice), stops a second copy.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import structlog

from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.mail import html_flow, mime, transfer
from gateway.mail.content import bytes_of
from gateway.mail.disclaimer_notice import DEFAULT_FILE, Notice
from gateway.mail.headers import CRLF
from gateway.mail.mime import Entity, MimeError
from gateway.mail.mime_edit import (
    charset_codec,
    encode_text,
    longest_line,
    mime_fields,
    minimal_edit,
    wrap_with_part,
)
from gateway.mail.splices import Edit
from gateway.mail.wire import edit_is_clean, has_bare_line_end_or_nul
from gateway.pipeline import Content, FilterContext, Splices, checked_options

log = structlog.get_logger("filters.disclaimer")

__all__ = ["DEFAULT_FILE", "DisclaimerFilter", "Notice", "Result", "add_notice", "create"]

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
_THREAD_THRESHOLD = 1 << 20  # larger messages are edited off the event loop


@dataclass(frozen=True)
class Result:
    original: Content
    splices: Splices  # the notice's edits of ``original`` (none: it is there already)
    action: str  # "inserted", "wrapped" or "present"
    parts: int  # body text parts edited (1 for a wrap)

    @property
    def content(self) -> bytes:
        """The message with the notice, as a new message (the filter has the pipeline make
        the edits in the message's own buffer instead)."""
        return self.splices.applied(self.original)


class _Wrap(Exception):
    """The body text cannot be edited in place; ``reason`` is a log-safe code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def add_notice(
    content: Content, notice: Notice, signed: str = "wrap", *, clean: bool = False
) -> Result:
    """The edits that put the notice in every body text part of ``content`` (the
    Result's ``splices``; ``Result.content`` is the message with them made). Raises
    Refused.

    ``clean``: the caller found no bare CR, bare LF or NUL in ``content`` (the submission
    handler refuses such a message before any filter), so of a body the notice was
    appended to, only what was appended needs that check (``_bare_in_edit``).
    """
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
        if _behind_rfc2231(root, parts):
            raise _Wrap("rfc2231")  # a reader that does not know RFC 2231 sees no parts
        for part in parts:
            edit = _edit_part(content, part, notice, clean)
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
        return Result(content, Splices.of(wrap_with_part(content, root, notice)), "wrapped", 1)
    if not edits:
        return Result(content, Splices(()), "present", 0)
    return Result(content, Splices.of(edits), "inserted", len(edits))


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
                if not inner:
                    # A reader may show this alternative (text/x-amp-html, text/enriched,
                    # text/calendar, a signed part…), and we cannot put the notice into it.
                    raise _Wrap("protected" if _has_protected(c) else "unedited-alternative")
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


def _behind_rfc2231(root: Entity, parts: list[Entity]) -> bool:
    """Whether a body part lies in a multipart whose boundary is in RFC 2231 form."""
    wanted = {id(p) for p in parts}

    def walk(e: Entity, extended: bool) -> bool:
        if extended and id(e) in wanted:
            return True
        return any(walk(c, extended or e.extended_boundary) for c in e.children)

    return walk(root, False)


# --- editing one body text part ---


def _edit_part(buf: Content, part: Entity, notice: Notice, clean: bool) -> Edit | None:
    body = bytes_of(buf, part.body_start, part.end)
    try:
        old = transfer.decode_body(body, part.cte)
    except MimeError as exc:
        raise _Wrap("undecodable") from exc
    codec = charset_codec(part.params.get("charset", "") or "us-ascii")  # RFC 2045 5.2 default
    if codec is None or (part.defaulted_type and codec != "ascii"):
        # A type read as text/plain is US-ASCII (RFC 2045 5.2); readers that keep its
        # charset= disagree, and may not show what we add in US-ASCII.
        raise _Wrap("charset")
    try:
        text = old.decode(codec)
    except (UnicodeError, LookupError) as exc:  # LookupError: not a text codec ("base64")
        raise _Wrap("charset") from exc
    nl = "\r\n" if part.cte in mime.IDENTITY or "\r\n" in text or "\n" not in text else "\n"
    if part.subtype == "html":
        flow = html_flow.read(text)
        if flow.insertion_point is None:
            raise _Wrap("html-hidden")  # nowhere is the notice surely seen
        at = flow.insertion_point
        seen = [n for n in flow.notices if n < at]
        if seen and notice.is_html(text[seen[-1] : at]):
            return None
        before = text[:at]
        block = notice.html(nl)
        lead = nl if before and not before.endswith("\n") else ""
    else:
        at = len(text)
        if notice.ends_plain(text):
            return None
        flowed = part.params.get("format", "").lower() == "flowed"  # RFC 3676
        block = notice.plain(nl, flowed, part.params.get("delsp", "").lower() == "yes")
        lead = "" if not text else nl if text.endswith("\n") else nl + nl
    insert = lead + block
    new, charset = encode_text(old, text, at, insert, codec)
    cte = part.cte
    if cte == "7bit" and old.isascii() and not new.isascii():
        cte = "quoted-printable"  # RFC 2045 2.7: 7bit data is ASCII only
    elif charset and cte in mime.IDENTITY and longest_line(new) > 998:
        cte = "quoted-printable"  # RFC 5322 2.1.1, after re-encoding as UTF-8
    if cte in mime.IDENTITY and _bare_in_edit(old, new, clean):
        # The charset's line breaks are not CR LF (UTF-16, UTF-32, EBCDIC): the notice in it
        # cannot travel as 7bit or 8bit (RFC 2045 2.7, 2.8); base64 as RFC 2781 4 advises.
        cte = "base64"
    if not charset and cte == part.cte and part.separated:
        new_body = transfer.splice_encoded(body, cte, old, new)
        return minimal_edit(part.body_start, body, new_body)
    head = mime_fields(part, charset, cte if cte != part.cte else None)
    new_body = transfer.encode_body(new, cte, transfer.b64_width(body))
    return (part.start, part.end, head + CRLF + new_body)


def _bare_in_edit(old: bytes, new: bytes, clean: bool) -> bool:
    """Whether ``new`` (``old`` edited) holds a bare CR, a bare LF or a NUL.

    ``old`` is a body cut from a message known ``clean``: clean itself unless the cut
    split a CRLF (an LF first, a CR last), so only where ``new`` differs from it is read
    (:func:`edit_is_clean`; the pipeline reads each filter's edits the same way, with
    ``span_is_clean``), a few hundred octets instead of the whole body.
    """
    if clean and not old.endswith(b"\r") and not old.startswith(b"\n"):
        return not edit_is_clean(old, new)
    return has_bare_line_end_or_nul(new)


# --- the filter ---


class DisclaimerFilter:
    name = "disclaimer"

    def __init__(self, notice: Notice, signed: str = "wrap") -> None:
        self.notice = notice
        self.signed = signed

    def apply(self, content: Content, *, clean: bool = False) -> Result:
        return add_notice(content, self.notice, self.signed, clean=clean)

    async def on_data(self, tx: Transaction, content: Content) -> Splices:
        try:
            # The pipeline gets only what the handler found CRLF-clean.
            apply = functools.partial(self.apply, clean=True)
            if len(content) > _THREAD_THRESHOLD:
                result = await asyncio.to_thread(apply, content)
            else:
                result = apply(content)
        except Refused as r:
            log.info("disclaimer_refused", queue_id=tx.queue_id, reference=r.reference)
            raise
        tx.annotations["disclaimer"] = result.action
        log.info("disclaimer", queue_id=tx.queue_id, action=result.action, parts=result.parts)
        return result.splices


def create(options: dict[str, Any], context: FilterContext) -> DisclaimerFilter:
    settings = context.settings
    where = checked_options(context, "disclaimer", options, ("file", "signed"))
    signed = options.get("signed", "wrap")
    if signed not in SIGNED_CHOICES:
        raise ConfigError(f"{where}.signed: must be 'wrap' or 'refuse', not {signed!r}")
    path: Path | Traversable = DEFAULT_FILE
    if "file" in options:
        if not isinstance(options["file"], str) or not options["file"]:
            raise ConfigError(f"{where}.file: expected a path")
        given = Path(options["file"])
        base = Path(getattr(settings, "base_dir", Path.cwd()))
        path = given if given.is_absolute() else base / given
    return DisclaimerFilter(Notice.load(path, f"{where}.file"), signed)
