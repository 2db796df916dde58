"""Approved contacts (admins): list and search, add, edit, remove, renew, attest, accept
MX hosts (CSV import and export: :mod:`gateway.web.pages_contacts_io`).

Each change goes through :class:`gateway.directory.contacts.ContactRepository` (its own audit rows
and the reload generation the SMTP filters watch, so a change applies to the next
message), which writes its register admin entry in the change's own transaction
(:meth:`gateway.web.console.Console.recording_contacts`, as the CLI records it): the
contact and its entry exist together or not at all. The MX check is the same sweep as
``contacts review`` (:func:`gateway.directory.mx_sweep.sweep`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.directory.contact import Contact, ContactError, PublicDomainError, review_date
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.console import Console
from gateway.web.contact_checks import DUE_SOON, flags_note, sweep_domains, warnings
from gateway.web.contact_forms import edits, new_contact
from gateway.web.render import flash, page, see_other


def _row(console: Console, c: Contact, today: date) -> dict[str, Any]:
    return {
        "c": c,
        "warnings": warnings(console, c, today),
        "lapsed": c.expired(today),
        "due": date.fromisoformat(c.review_due) <= today + timedelta(days=DUE_SOON),
    }


async def contacts_list(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    query = str(v.session.state.get("contacts_q", ""))
    everyone = await asyncio.to_thread(console.contacts.all)
    q = query.lower()
    found = [
        c
        for c in everyone
        if not q or any(q in x.lower() for x in (c.address, c.display_name, c.organisation, c.ref))
    ]
    today = console.contacts.today()
    return await page(
        request,
        v,
        "contacts_list.html",
        {
            "rows": [_row(console, c, today) for c in found],
            "total": len(everyone),
            "query": query,
        },
    )


async def contacts_search(request: Request) -> Response:
    v = await viewer(request, "admin")
    form = await checked_form(request, v.session)
    v.session.state["contacts_q"] = "" if text(form, "action") == "clear" else text(form, "q", 200)
    await asyncio.to_thread(console_of(request).sessions.save_state, v.session)
    return see_other("/contacts")


async def new_page(request: Request) -> Response:
    v = await viewer(request, "admin")
    return await page(request, v, "contact_new.html", {"values": {}, "today": _today(request)})


def _today(request: Request) -> str:
    return console_of(request).contacts.today().isoformat()


async def add(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    form = await checked_form(request, v.session)
    try:
        c = new_contact(form, v.login, console.contacts.today(), console.fax_routes)
        c = await asyncio.to_thread(console.recording_contacts().add, c, v.login)
    except ContactError as exc:
        values = {k: text(form, k) for k in form}
        error = str(exc)
        if isinstance(exc, PublicDomainError):
            error = f"{exc.domain} {exc.reason}, or give the reason to approve all of it anyway."
        return await page(
            request,
            v,
            "contact_new.html",
            {"values": values, "today": _today(request), "error": error},
            400,
        )
    flags = await sweep_domains(console, {c.domain})
    await flags_note(request, v, flags, f"Added {c.ref} (review due {c.review_due}).")
    return see_other(f"/contacts/{c.id}")


async def contact_page(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    c = await asyncio.to_thread(console.contacts.get, request.path_params["cid"])
    if c is None:
        return await page(request, v, "not_found.html", {"what": "that contact"}, 404)
    history = []
    for h in await asyncio.to_thread(console.contacts.history, c.id):
        before = json.loads(h["before"]) if h["before"] else {}
        after = json.loads(h["after"]) if h["after"] else {}
        changed = [
            f"{k}: {before.get(k)!r} -> {after.get(k)!r}"
            for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k) and before
        ]
        history.append((h["at"], h["action"], h["actor"], "; ".join(changed)))
    return await page(
        request,
        v,
        "contact.html",
        {"row": _row(console, c, console.contacts.today()), "c": c, "history": history},
    )


async def change(request: Request) -> Response:
    """Edit, renew, attest not-a-fax, accept MX hosts or re-check MX: one form each."""
    v = await viewer(request, "admin")
    console = console_of(request)
    form = await checked_form(request, v.session)
    c = await asyncio.to_thread(console.contacts.get, request.path_params["cid"])
    if c is None:
        return await page(request, v, "not_found.html", {"what": "that contact"}, 404)
    action, today = text(form, "action"), console.contacts.today()
    repo = console.recording_contacts()
    try:
        if action == "edit":
            changes: dict[str, Any] = edits(form, c)
            done = "Saved." if changes else "Nothing changed."
        elif action == "renew":
            changes = {
                "approved_on": today.isoformat(),
                "approved_by": v.login,
                "review_due": review_date(today).isoformat(),
            }
            reason = text(form, "public_domain_override", 500)
            if c.kind == "domain" and reason != c.public_domain_override:
                changes["public_domain_override"] = reason
            done = f"Renewed until {changes['review_due']}."
        elif action == "attest-not-fax":
            changes = {"not_fax_by": v.login, "not_fax_on": today.isoformat()}
            done = "Attested: not a fax route."
        elif action == "accept-mx":
            changes = {"mx_hosts": c.mx_seen or c.mx_hosts, "mx_flag": ""}
            done = f"Accepted MX hosts: {', '.join(c.mx_seen or c.mx_hosts or ()) or '-'}."
        elif action == "check-mx":
            await flags_note(request, v, await sweep_domains(console, {c.domain}), "")
            return see_other(f"/contacts/{c.id}")
        else:
            return see_other(f"/contacts/{c.id}")
        if changes:
            await asyncio.to_thread(repo.update, c.id, v.login, action, **changes)
        await flash(request, v, done)
    except PublicDomainError as exc:
        await flash(request, v, f"{exc.domain} {exc.reason}, or give the reason.", error=True)
    except ContactError as exc:
        await flash(request, v, str(exc), error=True)
    return see_other(f"/contacts/{c.id}")


async def remove_page(request: Request) -> Response:
    v = await viewer(request, "admin")
    c = await asyncio.to_thread(console_of(request).contacts.get, request.path_params["cid"])
    if c is None:
        return await page(request, v, "not_found.html", {"what": "that contact"}, 404)
    return await page(
        request,
        v,
        "confirm.html",
        {
            "title": f"Remove {c.ref}?",
            "question": f"Withdraw the approval of {c.address} ({c.organisation}). Mail to "
            "it will be refused from the next message on.",
            "action": f"/contacts/{c.id}/remove",
            "button": "Remove the contact",
            "back": f"/contacts/{c.id}",
        },
    )


async def remove(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    await checked_form(request, v.session)
    try:
        c = await asyncio.to_thread(
            console.recording_contacts().remove, request.path_params["cid"], v.login
        )
    except ContactError as exc:
        await flash(request, v, str(exc), error=True)
        return see_other("/contacts")
    await flash(request, v, f"Removed {c.ref} {c.address}.")
    return see_other("/contacts")


async def check_all(request: Request) -> Response:
    v = await viewer(request, "admin")
    await checked_form(request, v.session)
    await flags_note(request, v, await sweep_domains(console_of(request), None), "")
    return see_other("/contacts")


routes = [
    Route("/contacts", contacts_list, methods=["GET"]),
    Route("/contacts/search", contacts_search, methods=["POST"]),
    Route("/contacts/check-mx", check_all, methods=["POST"]),
    Route("/contacts/new", new_page, methods=["GET"]),
    Route("/contacts/new", add, methods=["POST"]),
    Route("/contacts/{cid:int}", contact_page, methods=["GET"]),
    Route("/contacts/{cid:int}", change, methods=["POST"]),
    Route("/contacts/{cid:int}/remove", remove_page, methods=["GET"]),
    Route("/contacts/{cid:int}/remove", remove, methods=["POST"]),
]
