"""Templates and the few helpers every page uses (flash messages, redirects)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from gateway.register.formats import local_time
from gateway.web.auth import Viewer, console_of
from gateway.web.policy_banner import review_banner

HERE = Path(__file__).parent


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template is HTML; nothing is marked safe by hand
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    return Jinja2Templates(env=env)


TEMPLATES = make_templates()


async def page(
    request: Request,
    viewer: Viewer | None,
    name: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    console = console_of(request)
    ctx: dict[str, Any] = {
        "viewer": viewer,
        "csrf": viewer.session.csrf if viewer else "",
        "organisation": console.settings.organisation.name,
        # The register's integrity is the reviewers' business: not staff's, nor someone
        # not yet signed in (the second-factor code, an enrolment link).
        "verify": console.verifier.status if viewer is not None and viewer.is_reviewer else None,
        "held_count": await held_count(request, viewer),
        "policy_review": review_banner(request, viewer),
        "flash": None,
        **(context or {}),
    }
    if viewer is not None and "flash" in viewer.session.state:
        ctx["flash"] = viewer.session.state.pop("flash")
        await asyncio.to_thread(console.sessions.save_state, viewer.session)
    return TEMPLATES.TemplateResponse(request, name, ctx, status_code=status)


async def held_count(request: Request, viewer: Viewer | None) -> int:
    """For the navigation: how many held messages wait for this viewer (a few rows)."""
    if viewer is None:
        return 0
    return await asyncio.to_thread(console_of(request).holds.count, viewer.member)


async def flash(request: Request, viewer: Viewer, message: str, *, error: bool = False) -> None:
    """A message shown once on the next page (after the redirect that follows a POST)."""
    viewer.session.state["flash"] = {"text": message, "error": error}
    await asyncio.to_thread(console_of(request).sessions.save_state, viewer.session)


def download(body: str | bytes, filename: str, media_type: str) -> Response:
    """A file for the browser to save (``Content-Disposition: attachment``), not to show."""
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def see_other(url: str) -> RedirectResponse:
    """POST/redirect/GET: a reload never repeats a change."""
    return RedirectResponse(url, status_code=303)
