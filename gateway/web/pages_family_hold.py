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
from gateway.register.record import Record
from gateway.register.retention import CATEGORIES
from gateway.web.auth import Viewer, checked_form, console_of, text, viewer
from gateway.web.console import Console
from gateway.web.register_scope import viewer_scope
from gateway.web.render import flash, see_other


def _standing(console: Console, v: Viewer, family: str) -> tuple[Record | None, bool]:
    """(the hold standing on ``family``, whether ``v`` may not read it). A hold outside the
    viewer's scope is not shown, as no record outside it is; nor may it be superseded or
    released from here. Blocking."""
    held = standing_hold(console.register, family) if family else None
    hidden = held is not None and not viewer_scope(console, v).shows(held)
    return (None if hidden else held), hidden


async def hold_context(console: Console, v: Viewer, family: str) -> dict[str, Any]:
    """What the report page's hold form shows: the hold standing on ``family``, if any."""
    held, hidden = await asyncio.to_thread(_standing, console, v, family)
    return {"family_hold": held, "family_hold_hidden": hidden, "hold_categories": CATEGORIES}


OUT_OF_SCOPE = (
    "a hold set by someone else stands on this family, outside what you may read; "
    "an admin can review or release it"
)


async def hold(request: Request) -> Response:
    v = await viewer(request)
    form = await checked_form(request, v.session)
    family = text(form, "family", 64)
    category = text(form, "category", 32)
    console = console_of(request)
    if (await asyncio.to_thread(_standing, console, v, family))[1]:
        await flash(request, v, f"No hold placed: {OUT_OF_SCOPE}.", error=True)
        return see_other("/register/report")
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
    if (await asyncio.to_thread(_standing, console, v, family))[1]:
        await flash(request, v, f"Not released: {OUT_OF_SCOPE}.", error=True)
        return see_other("/register/report")
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
