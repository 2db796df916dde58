"""The family report's client copy: what the family itself may be given.

Policy, "Client files": clients may view their files, but not information obtained from a
third party. The page shows the text of ``c4f-gateway register report --family REF
--client-copy`` (:mod:`gateway.register.client_copy`) for the family chosen on the report
page, read within the viewer's scope like the full report (``register_scope.readable_records``),
and offers it as a text file; each copy made is recorded in the admin trail.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.register.client_copy import client_copy_text
from gateway.register.criteria import Filters
from gateway.web.auth import Viewer, console_of, viewer
from gateway.web.register_scope import readable_records
from gateway.web.render import download, page, see_other


async def _copy(request: Request, v: Viewer) -> tuple[str, str] | None:
    """(family, client copy text), recorded in the admin trail; None: no family chosen."""
    console = console_of(request)
    family = str(v.session.state.get("report_family", ""))
    if not family:
        return None
    records = await readable_records(request, v, Filters(family=family))
    await asyncio.to_thread(console.audit, v.login, "family report client copy", {"family": family})
    return family, client_copy_text(family, records, console.clock())


async def client_copy_page(request: Request) -> Response:
    v = await viewer(request)
    found = await _copy(request, v)
    if found is None:
        return see_other("/register/report")
    family, text = found
    return await page(request, v, "client_copy.html", {"family": family, "text": text})


async def client_copy_file(request: Request) -> Response:
    found = await _copy(request, await viewer(request))
    if found is None:
        return see_other("/register/report")
    return download(found[1], "family-report-client-copy.txt", "text/plain; charset=utf-8")


routes = [
    Route("/register/report/client-copy", client_copy_page, methods=["GET"]),
    Route("/register/report/client-copy.txt", client_copy_file, methods=["GET"]),
]
