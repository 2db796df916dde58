"""What may travel in SMTP DATA: lines end in CRLF, and there is no NUL.

RFC 5321 2.3.8 and RFC 5322 2.3: CR and LF occur only together, as CRLF; NUL never occurs
(nor in 7bit and 8bit bodies, RFC 2045 2.7 and 2.8). A bare CR or LF is how SMTP smuggling
ends a message early at a later hop (SMUG-1..11). The submission handler checks what arrives;
what each filter makes of it is checked where it differs (the pipeline reads each edited
span with :func:`span_is_clean`), so what leaves is held to the same rule (MIME-7); the
disclaimer uses :func:`edit_is_clean` to decide when an edited body needs a transfer
encoding.
"""

from __future__ import annotations

from gateway.mail.content import Content
from gateway.mail.transfer import common_prefix, common_suffix


def has_bare_line_end_or_nul(data: Content) -> bool:
    """True when ``data`` holds a CR not followed by LF, an LF not preceded by CR, or a NUL.

    Counted, not searched: every CRLF holds one CR and one LF (and two CRLFs never
    overlap), so all CRs and LFs are paired exactly when the three counts agree. Each
    count is one pass at C speed; a look-around regex took most of the time of a large
    DATA.
    """
    if b"\x00" in data:
        return True
    crlf = data.count(b"\r\n")
    return data.count(b"\r") != crlf or data.count(b"\n") != crlf


def edit_is_clean(before: Content, after: Content) -> bool:
    """Whether ``after`` holds no bare CR, bare LF or NUL, given that ``before`` (from which
    it was made) holds none: :func:`has_bare_line_end_or_nul` of ``after``, reading only
    where the two differ.

    What ``after`` shares with ``before`` at its start and at its end is clean, and so is
    every line end inside those; a fault can only be in what differs, or where it meets
    them. So the span that differs is read widened to whole lines: from just after the
    last CRLF before it, to the end of the first CRLF that reaches past it. A filter's
    edit (a notice appended, a header changed) costs a few hundred octets, not the message.
    """
    if after is before:
        return True
    head = common_prefix(before, after)
    tail = common_suffix(before, after, min(len(before), len(after)) - head)
    return span_is_clean(after, head, len(after) - tail)


def span_is_clean(data: Content, start: int, end: int) -> bool:
    """Whether ``data[start:end]``, a span written into a message that was clean around it,
    left it clean: the span widened to whole lines holds no bare CR, bare LF or NUL."""
    found = data.rfind(b"\r\n", 0, start)
    lo = found + 2 if found >= 0 else 0
    found = data.find(b"\r\n", max(end - 1, 0))
    hi = found + 2 if found >= 0 else len(data)
    return not has_bare_line_end_or_nul(data[lo:hi])
