"""A family-level retention hold from the family report page, for managers and admins.

Policy, "Storage of information": information about a family is disposed of after three
years unless a safeguarding or child-protection issue arose or anybody was injured. The
forms write through :func:`gateway.register.family_hold.hold_family` and
``release_family``, exactly as ``c4f-gateway register hold-family`` and
``release-family`` do, with the signed-in person as the one who sets or releases it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.register.family_hold import (
    hold_family,
    placed_words,
    release_family,
    standing_hold,
)
from gateway.register.ledger import RegisterError
from gateway.register.retention import CATEGORIES
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.console import Console
from gateway.web.render import flash, see_other


async def hold_context(console: Console, family: str) -> dict[str, Any]:
    """What the report page's hold form shows: the hold standing on ``family``, if any."""
    held = await asyncio.to_thread(standing_hold, console.register, family) if family else None
    return {"family_hold": held, "hold_categories": CATEGORIES}


async def hold(request: Request) -> Response:
    v = await viewer(request)
    form = await checked_form(request, v.session)
    family = text(form, "family", 64)
    category = text(form, "category", 32)
    console = console_of(request)
    try:
        seq = await asyncio.to_thread(
            hold_family,
            console.register,
            family,
            actor=v.login,
            category=category,
            reason=text(form, "reason"),
            review_on=text(form, "review_on", 10) or None,
        )
    except RegisterError as exc:
        await flash(request, v, f"No hold placed: {exc}.", error=True)
    else:
        await flash(request, v, placed_words(family, category, seq))
    return see_other("/register/report")


async def release(request: Request) -> Response:
    v = await viewer(request)
    form = await checked_form(request, v.session)
    family = text(form, "family", 64)
    console = console_of(request)
    try:
        seq = await asyncio.to_thread(
            release_family, console.register, family, actor=v.login, reason=text(form, "reason")
        )
    except RegisterError as exc:
        await flash(request, v, f"Not released: {exc}.", error=True)
    else:
        await flash(request, v, f"Released the retention hold on family {family}: entry {seq}.")
    return see_other("/register/report")


routes = [
    Route("/register/report/hold", hold, methods=["POST"]),
    Route("/register/report/release", release, methods=["POST"]),
]
