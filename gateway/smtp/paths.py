"""MAIL FROM and RCPT TO paths read without the email package when they are plain.

aiosmtpd reads every path with the RFC 5322 header parser of :mod:`email` (and defines a
class on every call): a third of the work of a MAIL or RCPT command. A path that is
``<dot-atom@hostname>`` followed by nothing or by whitespace and parameters needs none of
that; :func:`plain_path` reads it and gives the same answer as the library. Anything else
(source routes, quoted local parts, address literals, comments, ``<>``) is left to the
library, so what is accepted and what is refused does not change.
"""

from __future__ import annotations

import re

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9-]+"
_PLAIN = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>(?:[ \t]+|$)")


def plain_path(arg: str, local_part_limit: int = 0) -> tuple[str, str] | None:
    """``(address, parameters)`` of a plain path, as aiosmtpd's ``_getaddr`` gives them;
    None when the path is not plain, or its local part is over ``local_part_limit``
    (0: no limit), so the library's reading (and refusal) applies."""
    found = _PLAIN.match(arg)
    if found is None:
        return None
    address = found.group(1)
    if local_part_limit and address.index("@") > local_part_limit:
        return None
    return address, arg[found.end() :]
