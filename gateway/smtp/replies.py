"""Every reply the listener sends carries an RFC 3463 enhanced status code (RFC 2034).

aiosmtpd's own replies mostly lack one; :func:`with_enhanced_code` adds it by reply code.
"""

from __future__ import annotations

import re

_ENHANCED = {
    "235": "2.7.0",
    "421": "4.7.0",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "552": "5.3.4",
    "554": "5.5.1",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(\s|$)")


def with_enhanced_code(reply: str) -> str:
    if reply in ("250 OK", "221 Bye"):
        return f"{reply[:3]} 2.0.0 {reply[4:]}"
    # EHLO's "250 HELP" and other 2xx lines stay as they are.
    if len(reply) < 4 or reply[3] != " " or _HAS_ENHANCED.match(reply):
        return reply
    code = reply[:3]
    enhanced = _ENHANCED.get(code)
    if enhanced is None:
        return reply
    text = reply[4:].removeprefix("Error: ")
    return f"{code} {enhanced} {text}"
