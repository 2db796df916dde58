"""The informed duty and retention holds in words, for ``register show``, lists and pages.

Policy, "Inter-agency working" (whether the person was informed) and "Storage of
information" (kept beyond three years, and why).
"""

from __future__ import annotations

from gateway.register.record import Record
from gateway.register.retention import local_day


def informed_words(r: Record) -> str:
    """ "yes on 2026-01-05", "no: REASON", "not recorded, due 2026-12-20", or ""."""
    if r.informed == "yes":
        return "yes" + (f" on {r.informed_on}" if r.informed_on else " (when sent)")
    if r.informed == "no" and r.informed_reason:
        return f"no: {r.informed_reason}"
    if r.inform_open:
        said = "no, reason not recorded" if r.informed == "no" else "not recorded"
        return f"{said}, due {local_day(r.inform_due).isoformat()}"
    return r.informed or ("" if r.kind != "accepted" else "not recorded")


def hold_words(r: Record) -> str:
    """ "injury, own hold: REASON (set by B on D; review on D)", or "no"."""
    h = r.hold
    if h is None:
        return "no"
    why = f": {h.reason}" if h.reason else ""
    who = f"set by {h.by} on " if h.by else "set on "
    return (
        f"{h.category}, {h.source}{why} ({who}{local_day(h.set_at).isoformat()}; "
        f"review on {h.review_on})"
    )
