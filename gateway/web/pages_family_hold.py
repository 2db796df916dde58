"""A family-level retention hold from the family report page, for managers and admins.

Policy, "Storage of information": information about a family is disposed of after three
years unless a safeguarding or child-protection issue arose or anybody was injured. The
forms write through :func:`gateway.register.family_hold.hold_family` and
``release_family``, exactly as ``c4f-gateway register hold-family`` and
``release-family`` do, with the signed-in person as the one who sets or releases it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.register.family_hold import (
    hold_family,
    placed_words,
    release_family,
    released_words,
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


async def _change(
    request: Request, refused: str, write: Callable[[Console, Viewer, FormData, str], str]
) -> Response:
    """Refuse a family whose standing hold the viewer may not read; else ``write`` the
    change (blocking; it returns what to say). Either way, back to the report page."""
    v = await viewer(request)
    form = await checked_form(request, v.session)
    family = text(form, "family", 64)
    console = console_of(request)
    if (await asyncio.to_thread(_standing, console, v, family))[1]:
        await flash(request, v, f"{refused}: {OUT_OF_SCOPE}.", error=True)
    else:
        try:
            done = await asyncio.to_thread(write, console, v, form, family)
        except RegisterError as exc:
            await flash(request, v, f"{refused}: {exc}.", error=True)
        else:
            await flash(request, v, done)
    return see_other("/register/report")


def _hold(console: Console, v: Viewer, form: FormData, family: str) -> str:
    category = text(form, "category", 32)
    seq = hold_family(
        console.register,
        family,
        actor=v.login,
        category=category,
        reason=text(form, "reason"),
        review_on=text(form, "review_on", 10) or None,
    )
    return placed_words(family, category, seq)


def _release(console: Console, v: Viewer, form: FormData, family: str) -> str:
    seq = release_family(console.register, family, actor=v.login, reason=text(form, "reason"))
    return released_words(family, seq)


async def hold(request: Request) -> Response:
    return await _change(request, "No hold placed", _hold)


async def release(request: Request) -> Response:
    return await _change(request, "Not released", _release)


routes = [
    Route("/register/report/hold", hold, methods=["POST"]),
    Route("/register/report/release", release, methods=["POST"]),
]
