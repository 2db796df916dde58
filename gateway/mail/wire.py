"""What may travel in SMTP DATA: lines end in CRLF, and there is no NUL.

RFC 5321 2.3.8 and RFC 5322 2.3: CR and LF occur only together, as CRLF; NUL never occurs
(nor in 7bit and 8bit bodies, RFC 2045 2.7 and 2.8). A bare CR or LF is how SMTP smuggling
ends a message early at a later hop (SMUG-1..11). The submission handler checks what arrives
and, with the same function, what leaves after the filters; the disclaimer uses it to decide
when an edited body needs a transfer encoding.
"""

from __future__ import annotations


def has_bare_line_end_or_nul(data: bytes) -> bool:
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
