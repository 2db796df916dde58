"""What goes into a register entry: recipients, disclosure details, follow-up changes.

Checked here so that what is sealed into an entry is always in the same shape, whether
it came from the filters (``tx.annotations``), the CLI or the review console.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from gateway.register.record import CONSENT_VALUES, THIRD_PARTY_FIELDS
from gateway.register.retention import CATEGORIES

FAMILY_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_DISCLOSURE_KEYS = (
    "consent",
    "reason",
    "family",
    "safeguarding",
    "nature",
    "informed",
    "external",
    "inherited_from",
    "request",
    "child_protection",
    "injury",
    "third_party",
)


class RegisterError(Exception):
    """A register operation that cannot be done (shown to the user as one line)."""


class PurgeRefused(RegisterError):
    """The entry is on hold (safeguarding, injury or manual hold): it must be kept."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def recipients_of(addresses: Iterable[str], annotations: dict[str, Any]) -> list[dict[str, Any]]:
    known = annotations.get("recipients") or {}
    lowered = {str(k).lower(): v for k, v in known.items()} if isinstance(known, dict) else {}
    out = []
    for address in addresses:
        info = lowered.get(address.lower()) or {}
        out.append(
            {
                "address": address,
                "contact_id": str(info.get("contact_id") or ""),
                "organisation": str(info.get("organisation") or ""),
                "display_name": str(info.get("display_name") or ""),
            }
        )
    return out


def disclosure_fields(annotations: dict[str, Any]) -> dict[str, Any]:
    found = annotations.get("disclosure") or {}
    out = {k: found[k] for k in _DISCLOSURE_KEYS if isinstance(found, dict) and k in found}
    out.setdefault("consent", "not-recorded")
    return out


def check_changes(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "informed" and value not in ("yes", "no"):
            raise RegisterError("informed must be 'yes' or 'no'")
        if key in ("informed_on", "hold_review_on"):
            try:
                value = date.fromisoformat(str(value)).isoformat()
            except ValueError:
                raise RegisterError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        if key == "consent" and value not in CONSENT_VALUES:
            raise RegisterError(f"consent must be one of {', '.join(CONSENT_VALUES)}")
        if key == "family" and not FAMILY_REF.match(str(value)):
            raise RegisterError(f"{value!r} is not a family reference (letters, digits, . _ / -)")
        if key in ("hold", "safeguarding", "third_party"):
            value = bool(value)
        elif key == "third_party_fields":
            value = sorted(set(value))  # all of them, or [] to show every part again
            unknown = [str(x) for x in value if x not in THIRD_PARTY_FIELDS]
            if unknown:
                raise RegisterError(
                    f"third-party fields are {', '.join(THIRD_PARTY_FIELDS)}, "
                    f"not {', '.join(unknown)}"
                )
        elif key == "hold_category" and value not in CATEGORIES:
            raise RegisterError(f"the hold category must be one of {', '.join(CATEGORIES)}")
        elif key in ("reason", "concern", "nature", "informed_reason", "hold_reason"):
            value = str(value).strip()
            if not value:
                raise RegisterError(f"{key} must not be empty")
        elif key not in (
            "informed",
            "informed_on",
            "consent",
            "family",
            "hold_category",
            "hold_review_on",
        ):
            raise RegisterError(f"cannot annotate {key!r}")
        out[key] = value
    if not out:
        raise RegisterError("nothing to record: give at least one detail")
    _check_answers(out)
    return out


def _check_answers(out: dict[str, Any]) -> None:
    """The person informed: answered yes with a date or no with a reason; a retention hold
    is placed with a category and a reason, and released with a reason."""
    if out.get("informed") == "yes" and "informed_on" not in out:
        raise RegisterError("the person was informed: give the date they were told (YYYY-MM-DD)")
    if out.get("informed") == "no" and "informed_reason" not in out:
        raise RegisterError("the person was not informed: give the reason why not")
    if "informed_reason" in out and out.get("informed") != "no":
        raise RegisterError("a reason for not informing goes with informed no")
    held = out.get("hold")
    if held is True and not ("hold_category" in out and "hold_reason" in out):
        raise RegisterError("a retention hold needs a category and a reason")
    if held is False and "hold_reason" not in out:
        raise RegisterError("releasing a retention hold needs a reason")
    if held is not True and ("hold_category" in out or "hold_review_on" in out):
        raise RegisterError("a hold category or review date goes with placing a retention hold")
    if "hold_reason" in out and held is None:
        raise RegisterError("a hold reason goes with placing or releasing a retention hold")
