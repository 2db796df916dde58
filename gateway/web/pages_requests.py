"""Record a request for information received: the console's form for staff and managers.

Policy, "Inter-agency working": "the person receiving the request must record details of
the agency or person making it and the nature of the information being requested". The
form writes through :func:`gateway.register.requests.record`, as ``c4f-gateway register
request add`` does; the one who records it is the signed-in person. The new request's
number is shown so that the answer can carry ``[request:N]``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.register import requests
from gateway.register.ledger import RegisterError
from gateway.web.auth import Viewer, checked_form, console_of, text, viewer
from gateway.web.render import flash, page, see_other

FIELDS = ("requester", "contact", "via", "received", "nature", "family")


async def request_form(request: Request) -> Response:
    v = await viewer(request, "staff")
    return await _form(request, v, {}, "")


async def _form(
    request: Request, v: Viewer, values: dict[str, str], error: str, status: int = 200
) -> Response:
    today = datetime.fromtimestamp(console_of(request).clock()).date().isoformat()
    return await page(
        request,
        v,
        "request_new.html",
        {
            "values": values,
            "error": error,
            "today": today,
            "via_choices": [(k, requests.VIA_WORDS[k]) for k in requests.VIA],
            "clause": requests.CLAUSE,
        },
        status,
    )


async def request_add(request: Request) -> Response:
    v = await viewer(request, "staff")
    form = await checked_form(request, v.session)
    values = {k: text(form, k, requests.MAX_TEXT + 1) for k in FIELDS}
    console = console_of(request)
    today = datetime.fromtimestamp(console.clock()).date()

    def record() -> int:
        contact_id = organisation = ""
        if values["contact"]:
            found = console.contacts.find(values["contact"])
            if found is None:
                raise RegisterError(f"there is no contact {values['contact']} (C-NNN)")
            contact_id, organisation = found.ref, found.organisation
        new = requests.NewRequest(
            requester=values["requester"],
            via=values["via"],
            received=values["received"] or today.isoformat(),
            nature=values["nature"],
            by=v.login,
            family=values["family"],
            contact_id=contact_id,
            organisation=organisation,
        )
        return requests.record(console.register, new, today)

    try:
        seq = await asyncio.to_thread(record)
    except RegisterError as exc:
        return await _form(request, v, values, str(exc), 400)
    await flash(
        request,
        v,
        f"Recorded request {seq}. Put [request:{seq}] in the subject of the message "
        "that answers it.",
    )
    return see_other(f"/register/entry/{seq}" if v.is_reviewer else "/requests/new")


routes = [
    Route("/requests/new", request_form, methods=["GET"]),
    Route("/requests/new", request_add, methods=["POST"]),
]
