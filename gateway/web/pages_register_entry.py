"""A register entry's page in the console, and the forms that add follow-ups to it
(``Register.annotate``, as ``c4f-gateway register annotate``): a record outside the
viewer's scope answers as a missing one (:mod:`.register_scope`). A follow-up the register
refuses shows the page again with the reason and what was typed, to correct."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.register import formats as fmt
from gateway.register import record_text
from gateway.register.duty_words import hold_words, informed_words
from gateway.register.export import flat
from gateway.register.ledger import RegisterError, no_entry
from gateway.register.record import CONSENT_VALUES, CONSENT_WORDS, THIRD_PARTY_FIELDS, Record
from gateway.register.retention import CATEGORIES
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.register_scope import readable_record
from gateway.web.render import flash, page, see_other

_REQUEST_PARTS = ("requester", "nature")  # a request's parts; a message has the others
# The fields of each follow-up form, given back as typed when the register refuses it.
_TYPED = {
    "details": ("consent", "reason", "nature", "family"),
    "informed": ("informed", "on", "informed_reason"),
    "concern": ("concern",),
    "hold": ("category", "hold_reason", "review_on"),
    "release": ("hold_reason",),
}
_NOTHING_TYPED = dict.fromkeys((name for names in _TYPED.values() for name in names), "")


async def entry_page(request: Request) -> Response:
    v = await viewer(request)
    seq: int = request.path_params["seq"]
    record = await readable_record(request, v, seq)
    if record is None:
        return await page(request, v, "not_found.html", {"what": f"register entry {seq}"}, 404)
    if record.seq != seq:
        return see_other(f"/register/entry/{record.seq}")  # a follow-up: show its original
    return await page(request, v, "register_entry.html", _entry_context(record))


def _entry_context(r: Record, typed: dict[str, str] | None = None) -> dict[str, Any]:
    f = flat(r)
    recipients = [fmt.recipient_words(x) for x in r.recipients]
    return {
        "r": r,
        "f": f,
        "title": fmt.kind_words(r),
        "recipients": recipients,
        "raw": sorted(r.data.items()) if r.kind in ("admin", "purge") else [],
        "followups": [record_text.followup_line(e) for e in r.followups],
        "concerns": [(fmt.local_time(c["at"]), c["by"], c["text"]) for c in r.concerns],
        "consent_choices": [(c, CONSENT_WORDS[c]) for c in CONSENT_VALUES[:3]],
        "hold_categories": CATEGORIES,
        "hold_words": hold_words(r),
        "informed_words": informed_words(r),
        "typed": typed or _NOTHING_TYPED,
        "disclosure": r.kind == "accepted" and not r.purged,
        "request_pairs": record_text.request_pairs(r)
        if r.kind == "request" and not r.purged
        else [],
        # Third-party: withheld from a client copy (messages and requests alike).
        "flaggable": r.kind in ("accepted", "request") and not r.purged,
        "parts": _REQUEST_PARTS
        if r.kind == "request"
        else tuple(p for p in THIRD_PARTY_FIELDS if p != "requester"),
    }


def typed_in(form: FormData) -> dict[str, str]:
    """What was typed into the form that was sent (every other form's fields empty)."""
    sent = _TYPED.get(text(form, "action"), ())
    return {**_NOTHING_TYPED, **{name: text(form, name, 5000) for name in sent}}


def changes_from(form: FormData) -> dict[str, Any]:
    """The follow-up a form asks for, in ``Register.annotate``'s words (as the CLI's)."""
    action = text(form, "action")
    if action == "details":
        return {k: text(form, k) or None for k in ("consent", "reason", "nature", "family")}
    if action == "informed":
        return {
            "informed": text(form, "informed") or None,
            "informed_on": text(form, "on") or None,
            "informed_reason": text(form, "informed_reason", 1000) or None,
        }
    if action == "concern":
        return {"concern": text(form, "concern", 5000) or None}
    if action == "hold":
        return {
            "hold": True,
            "hold_category": text(form, "category") or None,
            "hold_reason": text(form, "hold_reason", 1000) or None,
            "hold_review_on": text(form, "review_on") or None,
        }
    if action == "release":
        return {"hold": False, "hold_reason": text(form, "hold_reason", 1000) or None}
    if action == "third_party":
        parts = [p for p in form.getlist("part") if isinstance(p, str)]
        return {
            "third_party": {"yes": True, "no": False}.get(text(form, "third_party")),
            "third_party_fields": parts,
        }
    return {}


async def annotate(request: Request) -> Response:
    v = await viewer(request)
    form = await checked_form(request, v.session)
    seq: int = request.path_params["seq"]
    changes = changes_from(form)
    record = await readable_record(request, v, seq)
    if record is None:
        await flash(request, v, no_entry(seq), error=True)
        return see_other(f"/register/entry/{seq}")
    try:
        new = await asyncio.to_thread(
            console_of(request).register.annotate, seq, v.login, **changes
        )
    except RegisterError as exc:
        refused = {"text": str(exc), "error": True}
        context = {**_entry_context(record, typed_in(form)), "flash": refused}
        return await page(request, v, "register_entry.html", context, 400)
    await flash(request, v, f"Recorded follow-up {new} to entry {seq}.")
    return see_other(f"/register/entry/{seq}")


routes = [
    Route("/register/entry/{seq:int}", entry_page, methods=["GET"]),
    Route("/register/entry/{seq:int}", annotate, methods=["POST"]),
]
