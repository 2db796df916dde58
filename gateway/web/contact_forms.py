"""Contact forms on the contacts module's own rules.

A new contact is built and checked exactly as ``c4f-gateway contacts add`` builds it
(hard fax signs refused, soft ones need the not-a-fax attestation, review due 12 months
after approval); the import's preview is the import's own plan
(:func:`gateway.directory.contacts_import.plan_import`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.datastructures import FormData

from filters.fax_route import FaxRoutes
from gateway.directory.contact import Contact, ContactError, review_date
from gateway.web.auth import text


def _date(value: str, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ContactError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None


def new_contact(form: FormData, actor: str, today: date, routes: FaxRoutes) -> Contact:
    """The contact a form asks for (raises ContactError, as the CLI's ``add`` does)."""
    domain = text(form, "kind") == "domain"
    address = text(form, "address", 320)
    sign = None if domain else routes.classify(address)
    if sign is not None and sign.hard:
        raise ContactError(f"{address} is {sign.reason}: fax routes cannot be approved")
    approved = _date(text(form, "approved_on"), "approved on") or today
    due = _date(text(form, "review_due"), "review due") or review_date(approved)
    not_fax = bool(form.get("not_fax"))
    return Contact(
        id=0,
        kind="domain" if domain else "address",
        address=address,
        display_name=text(form, "display_name", 200),
        organisation=text(form, "organisation", 200),
        role=text(form, "role", 200),
        approved_by=text(form, "approved_by", 200) or actor,
        approved_on=approved.isoformat(),
        verified_how=text(form, "verified_how", 500),
        review_due=due.isoformat(),
        notes=text(form, "notes", 2000),
        unusual=bool(form.get("allow_unusual")),
        not_fax_by=actor if not_fax else "",
        not_fax_on=today.isoformat() if not_fax else "",
        requires_approval=bool(form.get("requires_approval")),
        public_domain_override=text(form, "public_domain_override", 500) if domain else "",
    )


def edits(form: FormData, current: Contact) -> dict[str, Any]:
    """The fields an edit may change (the address itself is changed by remove and add)."""
    out: dict[str, Any] = {
        "display_name": text(form, "display_name", 200),
        "organisation": text(form, "organisation", 200),
        "role": text(form, "role", 200),
        "verified_how": text(form, "verified_how", 500),
        "notes": text(form, "notes", 2000),
        # A checkbox: absent from the form when unticked, so unticking clears the mark.
        "requires_approval": bool(form.get("requires_approval")),
    }
    due = _date(text(form, "review_due"), "review due")
    if due is not None:
        out["review_due"] = due.isoformat()
    return {k: v for k, v in out.items() if v != getattr(current, k)}
