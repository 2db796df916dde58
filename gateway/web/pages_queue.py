"""The queue (admins): waiting, deferred and set-aside messages with their last error.

Never the content, the subject or the recipients: only what ``c4f-gateway queue list``
shows. Retry and delete are the CLI's own calls (``Spool.retry_now``, ``Spool.recheck``,
``Spool.delete``); delete asks for confirmation on a page of its own.
"""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.queue.spool import QueueRow, Spool
from gateway.register.formats import local_time
from gateway.web.auth import checked_form, console_of, viewer
from gateway.web.render import flash, page, see_other

QUEUE_ID = re.compile(r"^[0-9A-F]{12}$")


def _state(r: QueueRow) -> str:
    if r.state == "corrupt":
        return "set aside (failed its integrity check)"
    if r.state == "held":
        return "held for approval"
    if r.state == "unapproved":
        return "set aside (released without a recorded approval)"
    return "deferred (will retry)" if r.attempts else "waiting"


async def queue_list(request: Request) -> Response:
    v = await viewer(request, "admin")
    rows = await asyncio.to_thread(console_of(request).spool.rows)
    return await page(
        request,
        v,
        "queue.html",
        {
            "rows": [
                {
                    "id": r.queue_id,
                    "received": local_time(r.created),
                    "staff": r.staff or "(gateway)",
                    "size": r.size,
                    "pending": r.pending,
                    "attempts": r.attempts,
                    "state": _state(r),
                    "corrupt": r.state in ("corrupt", "unapproved"),
                    # Only a decision moves these (Held messages): no Retry, no Delete.
                    "undecided": r.state in ("held", "unapproved"),
                    "next": local_time(r.next_attempt) if r.state == "queued" else "-",
                    "error": r.last_error.splitlines()[0][:200] if r.last_error else "",
                }
                for r in rows
            ]
        },
    )


def _qid(request: Request) -> str:
    qid = str(request.path_params["qid"]).upper()
    return qid if QUEUE_ID.match(qid) else ""


def _retry(spool: Spool, qid: str) -> bool:
    return spool.retry_now(qid)


def _recheck(spool: Spool, qid: str) -> bool:
    return spool.recheck(qid)


async def retry(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    await checked_form(request, v.session)
    qid = _qid(request)
    spool = console.spool
    retried = bool(qid) and await asyncio.to_thread(_retry, spool, qid)
    rechecked = not retried and bool(qid) and await asyncio.to_thread(_recheck, spool, qid)
    if retried:
        done = f"{qid} will be tried now."
    elif rechecked:
        done = f"{qid} passes its integrity check again and will be tried now."
    else:
        await flash(
            request,
            v,
            f"{qid or 'That message'}: not in the queue, or still fails its integrity check.",
            error=True,
        )
        return see_other("/queue")
    await asyncio.to_thread(console.audit, v.login, "queue retry", {"queue_id": qid})
    await flash(request, v, done)
    return see_other("/queue")


async def delete_page(request: Request) -> Response:
    v = await viewer(request, "admin")
    qid = _qid(request)
    return await page(
        request,
        v,
        "confirm.html",
        {
            "title": f"Delete {qid}?",
            "question": f"Delete message {qid} from the queue for good. It will not be "
            "delivered and cannot be brought back; the register keeps its record.",
            "action": f"/queue/{qid}/delete",
            "button": "Delete the message",
            "back": "/queue",
        },
    )


async def delete(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    await checked_form(request, v.session)
    qid = _qid(request)
    if not qid or not await asyncio.to_thread(console.spool.delete, qid):
        await flash(request, v, f"{qid or 'That message'}: not in the queue.", error=True)
        return see_other("/queue")
    await asyncio.to_thread(console.audit, v.login, "queue delete", {"queue_id": qid})
    await flash(request, v, f"Deleted {qid}.")
    return see_other("/queue")


routes = [
    Route("/queue", queue_list, methods=["GET"]),
    Route("/queue/{qid:str}/retry", retry, methods=["POST"]),
    Route("/queue/{qid:str}/delete", delete_page, methods=["GET"]),
    Route("/queue/{qid:str}/delete", delete, methods=["POST"]),
]
