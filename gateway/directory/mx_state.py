"""A contact's MX state, worded once for ``contacts list`` / ``show`` and the console.

What the DNS sweep (:mod:`gateway.directory.mx_sweep`) last found about a contact's
domain, each state as a short code (the CLI's STATE column) and in words (the console's
warnings and ``contacts show``): a fax-MX flag, MX hosts that changed since approval, a
domain that takes no mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.directory.contact import Contact


@dataclass(frozen=True)
class MxState:
    code: str  # e.g. "mx-changed": in `contacts list`'s STATE column
    words: str  # e.g. "MX hosts changed: a -> b": the console's warning, `contacts show`


def mx_states(c: Contact) -> list[MxState]:
    """Every MX state worth a warning, in a fixed order; empty when all is as approved."""
    out = []
    if c.mx_flag:
        out.append(MxState("fax-mx", f"fax route by DNS: {c.mx_flag}"))
    if c.mx_seen == ():  # said once: not also as hosts "changed" to none
        out.append(MxState("no-mx", "the domain takes no mail (no MX)"))
    elif c.mx_hosts is not None and c.mx_seen is not None and set(c.mx_hosts) != set(c.mx_seen):
        was = ", ".join(c.mx_hosts) or "(none)"
        out.append(MxState("mx-changed", f"MX hosts changed: {was} -> {', '.join(c.mx_seen)}"))
    return out
