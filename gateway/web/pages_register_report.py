"""The per-family report in the console: everything shared about one family that the
viewer may read, as a page and as the text ``c4f-gateway register report --family``
writes; the family chosen lives in the session, never in the URL. Its family retention
hold is :mod:`.pages_family_hold`; the client's own copy :mod:`.pages_client_copy`."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.register import formats as fmt
from gateway.register import record_text
from gateway.register.criteria import Filters
from gateway.register.export import flat
from gateway.register.requests import CLAUSE as REQUEST_CLAUSE
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.pages_family_hold import hold_context
from gateway.web.register_scope import readable_records
from gateway.web.render import download, page, see_other


async def report_page(request: Request) -> Response:
    v = await viewer(request)
    console = console_of(request)
    family = str(v.session.state.get("report_family", ""))
    records = await readable_records(request, v, Filters(family=family)) if family else []
    return await page(
        request,
        v,
        "register_report.html",
        {
            "family": family,
            "records": [(r, flat(r)) for r in records],
            "generated": fmt.local_time(console.clock()),
            "clause": REQUEST_CLAUSE,
            **await hold_context(console, v, family),
        },
    )


async def report_choose(request: Request) -> Response:
    v = await viewer(request)
    form = await checked_form(request, v.session)
    family = text(form, "family", 64)
    v.session.state["report_family"] = family
    await asyncio.to_thread(console_of(request).sessions.save_state, v.session)
    if family:
        await asyncio.to_thread(
            console_of(request).audit, v.login, "family report", {"family": family}
        )
    return see_other("/register/report")


async def report_text(request: Request) -> Response:
    v = await viewer(request)
    console = console_of(request)
    family = str(v.session.state.get("report_family", ""))
    if not family:
        return see_other("/register/report")
    records = await readable_records(request, v, Filters(family=family))
    return download(
        record_text.report_text(family, records, console.clock()),
        "family-report.txt",
        "text/plain; charset=utf-8",
    )


routes = [
    Route("/register/report", report_page, methods=["GET"]),
    Route("/register/report", report_choose, methods=["POST"]),
    Route("/register/report.txt", report_text, methods=["GET"]),
]
