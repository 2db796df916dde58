"""Held messages: what waits for a line manager, and its details for the people who
may decide (the approve, refuse, withdraw and complete forms post to
:mod:`.pages_held_decide`).

Everything goes through :class:`gateway.holds.service.Holds`, the object ``serve`` and
``c4f-gateway held`` use: it says who may see and decide, and writes the register entry,
the sender's notice and the release in one transaction, so this module records nothing of
its own. An approved message is picked up by ``serve``'s worker from the database. A
message the viewer may not see answers exactly as one that does not exist (404), and its
details are decrypted only for a viewer ``Holds.may_see`` allows.

Staff (role ``staff``) see and withdraw only their own held messages; managers decide on
their reports' messages; admins on everyone's, and alone on those of a sender with no
line manager (the page says so, so the gap is seen and closed).

The message text is shown as text (an HTML-only message through Python's HTML parser,
never rendered) and attachments are downloads only (``Content-Disposition: attachment``,
``application/octet-stream``), so nothing in a held message runs in the console; each
reading is recorded in the register's admin trail (:mod:`gateway.holds.reading`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.holds.held import HeldMessage
from gateway.holds.reading import Unreadable, read_attachment, read_text
from gateway.holds.service import MAX_NOTE, HoldError, Holds
from gateway.mail.readable import Readable
from gateway.register.formats import local_time
from gateway.register.record import CONSENT_WORDS
from gateway.web.auth import Viewer, console_of, viewer
from gateway.web.render import download, page

QUEUE_ID = re.compile(r"^[0-9A-F]{12}$")


def admin_only_words(held: HeldMessage) -> str:
    return f"No line manager configured for {held.staff}: only an admin can release this"


def _row(held: HeldMessage, v: Viewer, admins: frozenset[str]) -> dict[str, Any]:
    # An admin's held message waits for another admin, as intended: no gap to warn of.
    gap = held.admin_only and held.staff not in admins
    if held.admin_only:
        deciders = "an admin" if gap else "another admin"
    else:
        deciders = f"{', '.join(held.managers)} or an admin"
    return {
        "id": held.queue_id,
        "staff": held.staff,
        "own": held.staff == v.login,
        "since": local_time(held.held_at),
        "expires": local_time(held.expires_at),
        "reasons": ", ".join(held.reasons),
        "needs_note": held.needs_note,
        "admin_only": admin_only_words(held) if gap else "",
        "deciders": deciders,
    }


async def _admins(request: Request) -> frozenset[str]:
    members = await asyncio.to_thread(console_of(request).staff.list)
    return frozenset(m.login for m in members if m.role == "admin")


def _intro(v: Viewer) -> str:
    if v.is_admin:
        return (
            "Every held message. As an admin you may approve or refuse any of them but your "
            "own, and you alone can release those from staff with no line manager."
        )
    if v.is_reviewer:
        return (
            "Messages from the staff you line-manage that wait for your decision, and any of "
            "your own waiting for someone else's."
        )
    return (
        "Your messages waiting for a line manager's approval. Open one to see what it "
        "holds, or to withdraw it."
    )


async def held_list(request: Request) -> Response:
    v = await viewer(request, "staff")
    pending = await asyncio.to_thread(console_of(request).holds.pending, v.member)
    admins = await _admins(request)
    return await page(
        request,
        v,
        "held_list.html",
        {"rows": [_row(h, v, admins) for h in pending], "intro": _intro(v)},
    )


def qid_of(request: Request) -> str:
    qid = str(request.path_params["qid"]).upper()
    return qid if QUEUE_ID.match(qid) else ""


def visible(holds: Holds, v: Viewer, qid: str) -> HeldMessage | None:
    """The held message if ``v`` may see it; else None, as if it did not exist."""
    held = holds.get(qid) if qid else None
    return held if held is not None and holds.may_see(v.member, held) else None


async def not_found(request: Request, v: Viewer, qid: str) -> Response:
    what = f"held message {qid or 'with that ID'} for you to see"
    return await page(request, v, "not_found.html", {"what": what}, 404)


async def held_page(request: Request) -> Response:
    v = await viewer(request, "staff")
    qid = qid_of(request)
    held = await asyncio.to_thread(visible, console_of(request).holds, v, qid)
    if held is None:
        return await not_found(request, v, qid)
    return await detail(request, v, held)


def _recipient(r: dict[str, Any]) -> dict[str, str]:
    return {
        "address": str(r.get("address", "")),
        "name": str(r.get("display_name") or ""),
        "organisation": str(r.get("organisation") or "not on record"),
        "contact": str(r.get("contact_id") or "none"),
    }


async def detail(
    request: Request,
    v: Viewer,
    held: HeldMessage,
    *,
    error: str = "",
    failed: str = "",
    note: str = "",
    consent: str = "",
    status: int = 200,
) -> Response:
    console = console_of(request)
    holds = console.holds
    problem = ""
    body: Readable | None = None
    try:
        d = await asyncio.to_thread(holds.details, held)
        reader = v.member.login
        body = await asyncio.to_thread(
            read_text, holds.spool, held, reader, console.register.record_admin
        )
    except (HoldError, Unreadable) as exc:
        d, problem = None, sentence(str(exc))
    context: dict[str, Any] = {
        "h": _row(held, v, await _admins(request)),
        "d": d,
        "body": body,
        "problem": problem,
        "recipients": [_recipient(r) for r in d.recipients] if d else [],
        "consent": CONSENT_WORDS.get(d.consent, d.consent) if d else "",
        "may_decide": holds.refusal_to_decide(v.member, held) is None,
        "consent_choices": [
            ("", f"as sent ({CONSENT_WORDS.get(d.consent, d.consent)})" if d else "as sent"),
            ("obtained", "consent obtained"),
            ("refused", "consent refused"),
            ("not-sought", "consent not sought"),
        ],
        "chosen_consent": consent,
        "failed": failed,
        "note": note,
        "max_note": MAX_NOTE,
    }
    if error:
        context["flash"] = {"text": sentence(error), "error": True}
    return await page(request, v, "held.html", context, status)


async def held_attachment(request: Request) -> Response:
    """One attachment of a held message, as a download (never shown in the console)."""
    v = await viewer(request, "staff")
    qid = qid_of(request)
    console = console_of(request)
    held = await asyncio.to_thread(visible, console.holds, v, qid)
    number = int(request.path_params["number"])
    found = None
    if held is not None:
        try:
            found = await asyncio.to_thread(
                read_attachment,
                console.holds.spool,
                held,
                number,
                v.member.login,
                console.register.record_admin,
            )
        except Unreadable:
            found = None
    if found is None:
        return await not_found(request, v, qid)
    info, data = found
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", info.name)[:100] or f"attachment-{number}"
    return download(data, name, "application/octet-stream")


def sentence(words: str) -> str:
    """HoldError's words as a sentence (a login at the start keeps its case)."""
    if "@" not in words.split(" ", 1)[0]:
        words = words[:1].upper() + words[1:]
    return words if words.endswith(".") else words + "."


routes = [
    Route("/held", held_list, methods=["GET"]),
    Route("/held/{qid:str}", held_page, methods=["GET"]),
    Route("/held/{qid:str}/attachment/{number:int}", held_attachment, methods=["GET"]),
]
