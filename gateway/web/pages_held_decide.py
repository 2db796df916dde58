"""Deciding on a held message in the console: a line manager approves or refuses it, its
sender withdraws it or gives the details it lacked (released at once when no hold rule
still applies, :mod:`gateway.holds.completion`). Every step goes through
:class:`gateway.holds.service.Holds`, as ``c4f-gateway held`` does; the pages that show
a held message are :mod:`.pages_held`."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filters.approval import ApprovalFilter, policy_from
from gateway.envelope import Session, Transaction
from gateway.holds.completion import Judge, complete
from gateway.holds.held import HeldMessage
from gateway.holds.service import MAX_NOTE, HoldError
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.pages_held import detail, not_found, qid_of, sentence, visible
from gateway.web.render import flash, see_other

Action = Literal["approve", "refuse", "withdraw"]


def _judge(console: Any) -> Judge:
    """The approval filter's rules as the gateway applies them, for a completed message."""
    settings = console.settings
    policy = ApprovalFilter(
        policy_from(dict(settings.filter.get("approval", {}))), settings.organisation.domains
    )

    def judge(rcpt_tos: list[str], annotations: dict[str, Any]) -> list[str]:
        tx = Transaction(Session(peer=""), "", rcpt_tos=rcpt_tos, annotations=annotations)
        return policy.reasons(tx)

    return judge


async def complete_details(request: Request) -> Response:
    """The sender gives the details their held message lacked; released if nothing holds it."""
    v = await viewer(request, "staff")
    form = await checked_form(request, v.session)
    console = console_of(request)
    qid = qid_of(request)
    held = await asyncio.to_thread(visible, console.holds, v, qid)
    if held is None or held.staff != v.login:
        return await not_found(request, v, qid)
    changes = {k: text(form, k, 1000) for k in ("consent", "reason", "family", "nature")}
    try:
        _, still = await asyncio.to_thread(
            complete, console.holds, held.queue_id, v.login, changes, _judge(console)
        )
    except HoldError as exc:
        return await detail(request, v, held, error=str(exc), status=400)
    if still:
        words = "; ".join(still)
        await flash(
            request,
            v,
            f"Still held ({words}): a line manager decides. Nothing was recorded; "
            "withdraw it, or wait for the decision.",
            error=True,
        )
        return see_other(f"/held/{held.queue_id}")
    await flash(request, v, f"Recorded: {held.queue_id} no longer needs approval and is sent now.")
    return see_other("/held")


def _done(action: Action, held: HeldMessage, note: str) -> str:
    qid = held.queue_id
    if action == "approve":
        noted = " and your note" if note else ""
        return f"Approved {qid}: it will now be sent. The register records your approval{noted}."
    if action == "refuse":
        return f"Refused {qid}: it will not be sent. {held.staff} has been told, with your note."
    return f"Withdrew {qid}: it will not be sent."


async def _decide(request: Request, action: Action) -> Response:
    v = await viewer(request, "staff")
    form = await checked_form(request, v.session)  # before anything is looked up
    holds = console_of(request).holds
    qid = qid_of(request)
    held = await asyncio.to_thread(visible, holds, v, qid)
    if held is None:
        return await not_found(request, v, qid)
    note = text(form, "note", 4 * MAX_NOTE)  # Holds says when it is too long
    consent = text(form, "consent", 20)
    try:
        if action == "approve":
            await asyncio.to_thread(holds.approve, held.queue_id, v.login, note, consent)
        elif action == "refuse":
            await asyncio.to_thread(holds.refuse, held.queue_id, v.login, note)
        else:
            await asyncio.to_thread(holds.withdraw, held.queue_id, v.login)
    except HoldError as exc:
        still = await asyncio.to_thread(visible, holds, v, held.queue_id)
        if still is None:  # decided, withdrawn or expired meanwhile
            await flash(request, v, sentence(str(exc)), error=True)
            return see_other("/held")
        return await detail(
            request,
            v,
            still,
            error=str(exc),
            failed=action,
            note=note,
            consent=consent,
            status=400,
        )
    await flash(request, v, _done(action, held, note))
    return see_other("/held")


async def approve(request: Request) -> Response:
    return await _decide(request, "approve")


async def refuse(request: Request) -> Response:
    return await _decide(request, "refuse")


async def withdraw(request: Request) -> Response:
    return await _decide(request, "withdraw")


routes = [
    Route("/held/{qid:str}/approve", approve, methods=["POST"]),
    Route("/held/{qid:str}/refuse", refuse, methods=["POST"]),
    Route("/held/{qid:str}/withdraw", withdraw, methods=["POST"]),
    Route("/held/{qid:str}/complete", complete_details, methods=["POST"]),
]
