"""The console as an ASGI application: routes, security middleware, error pages.

``create_app(console)`` is what ``c4f-gateway web`` serves and what the tests drive
(Starlette's TestClient for the security properties, a real browser for the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gateway.web import (
    pages_client_copy,
    pages_contacts,
    pages_contacts_io,
    pages_enrol,
    pages_family_hold,
    pages_held,
    pages_held_decide,
    pages_policy,
    pages_queue,
    pages_register,
    pages_register_entry,
    pages_register_report,
    pages_reports,
    pages_requests,
    pages_signin,
    pages_staff,
)
from gateway.web.auth import CSRFRefused, Forbidden, SignInRequired, viewer
from gateway.web.console import Console
from gateway.web.render import HERE, page, see_other
from gateway.web.security import SecurityHeaders

MAX_BODY = 5 * 1024 * 1024


async def _signin_required(request: Request, exc: Exception) -> Response:
    return see_other("/signin")


async def _forbidden(request: Request, exc: Exception) -> Response:
    v = await viewer(request, "staff")
    need = exc.need if isinstance(exc, Forbidden) else "admin"
    return await page(request, v, "forbidden.html", {"need": need}, 403)


async def _csrf(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(
        "This form has expired or did not come from this console. Go back, reload the "
        "page and try again.",
        status_code=403,
    )


async def _http(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    words = {404: "Not found.", 405: "Method not allowed.", 413: "Too large."}
    return PlainTextResponse(words.get(status, "Error."), status_code=status)


def create_app(console: Console, *, verify_at_start: bool = True) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if verify_at_start:
            await console.verifier.run_now()
        task = asyncio.create_task(console.verifier.every_interval())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(
        routes=[
            *pages_signin.routes,
            *pages_enrol.routes,
            *pages_register.routes,
            *pages_register_entry.routes,
            *pages_register_report.routes,
            *pages_client_copy.routes,
            *pages_family_hold.routes,
            *pages_reports.routes,
            *pages_contacts_io.routes,  # before /contacts/{cid}
            *pages_contacts.routes,
            *pages_queue.routes,
            *pages_staff.routes,
            *pages_held.routes,
            *pages_held_decide.routes,
            *pages_policy.routes,
            *pages_requests.routes,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders, https=console.web.tls)],
        exception_handlers={
            SignInRequired: _signin_required,
            Forbidden: _forbidden,
            CSRFRefused: _csrf,
            HTTPException: _http,
        },
        lifespan=lifespan,
        max_body_size=MAX_BODY,
    )
    app.state.console = console
    return app
