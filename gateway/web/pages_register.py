"""Disclosure log review: the register with the CLI's filters, its CSV export, "Verify
now" and the admin trail. An entry's page and its follow-up forms are
:mod:`.pages_register_entry`; the per-family report :mod:`.pages_register_report`.

Everything reads through :class:`gateway.register.ledger.Register` and writes through
``Register.annotate``, as ``c4f-gateway register list/show/export/report/annotate`` do;
the CSV and the report text are the CLI's own (:mod:`gateway.register.formats`).
The filter lives in the session, never in the URL (it can name staff and families).
What a manager reads is limited by ``[web] manager_scope`` (:mod:`.register_scope`):
every page reads through ``readable_records`` or ``readable_record``, and a record outside
the viewer's scope answers exactly as a missing one.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.directory.staff import StaffMember
from gateway.register import formats as fmt
from gateway.register import index_page
from gateway.register.criteria import Filters
from gateway.register.export import csv_text
from gateway.register.period import parse_day
from gateway.register.record import CONSENT_VALUES, CONSENT_WORDS, ROOT_KINDS, Record
from gateway.register.summary import Summary, summarise
from gateway.register.summary_formats import period_words
from gateway.register.summary_formats import totals as summary_totals
from gateway.web.auth import Viewer, checked_form, console_of, text, viewer
from gateway.web.console import Console
from gateway.web.register_duties import duty_counts
from gateway.web.register_scope import RegisterScope, readable_records, scope_for
from gateway.web.render import download, flash, page, see_other
from gateway.web.verify_monitor import VerifyStatus

PAGE_SIZE = 100


VERIFY_WAIT = 1.0  # seconds "Verify now" waits for the answer before showing the progress


VERIFY_REFRESH = 2  # seconds between two looks at the progress


FILTER_TEXT = ("since", "until", "staff", "recipient", "organisation", "family", "consent")


FILTER_FLAGS = (
    "incomplete",
    "refused",
    "retention_hold",
    "held_for_approval",
    "inform_due",
    "hold_review_due",
)


# The list shows requests received among the messages, as `register list` does.
LIST_KINDS = ("accepted", "refused", "request")


def _day(value: str, *, end: bool = False) -> float | None:
    """A local date, as ``register list --since/--until`` reads it."""
    try:
        return parse_day(value, end=end)
    except ValueError:
        return None


def filters_of(
    saved: dict[str, Any],
    kinds: tuple[str, ...] = LIST_KINDS,
    now: float | None = None,
) -> Filters:
    """``now``: the console's clock, for what is overdue (None: the register's clock)."""
    consent = str(saved.get("consent", ""))
    if consent and kinds == LIST_KINDS:  # a consent status is a message's: no request has one
        kinds = tuple(k for k in kinds if k != "request")
    return Filters(
        since=_day(str(saved.get("since", ""))),
        until=_day(str(saved.get("until", "")), end=True),
        staff=str(saved.get("staff", "")),
        recipient=str(saved.get("recipient", "")),
        organisation=str(saved.get("organisation", "")),
        family=str(saved.get("family", "")),
        consent=consent if consent in CONSENT_VALUES else "",
        incomplete=bool(saved.get("incomplete")),
        refused=bool(saved.get("refused")),
        retention_hold=bool(saved.get("retention_hold")),
        held_for_approval=bool(saved.get("held_for_approval")),
        inform_due=bool(saved.get("inform_due")),
        hold_review_due=bool(saved.get("hold_review_due")),
        now=now,
        kinds=kinds,
    )


def _staff_choices(members: list[StaffMember], scope: RegisterScope) -> list[str]:
    """The filter's staff list: everyone, or the viewer's reports."""
    return [
        m.login for m in members if scope.everything or m.login.lower() in (scope.reports or ())
    ]


def _saved(v: Viewer) -> dict[str, Any]:
    found = v.session.state.get("register", {})
    return found if isinstance(found, dict) else {}


def list_page(
    console: Console, member_scope: RegisterScope, filters: Filters, number: int
) -> tuple[int, list[Record], Summary]:
    """(records matching, the records of page ``number``, newest first, the period's
    summary): read through the register's index, decrypting only the page shown.
    Blocking: run it in a worker thread."""
    register = console.register
    found = index_page.page(
        register, filters, member_scope, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    if found is None:  # a filter the index does not answer: the whole register
        every = member_scope.only(register.records(filters))
        every.reverse()
        found = len(every), every[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    figures = summarise(
        register,
        since=filters.since,
        until=filters.until,
        now=console.clock(),
        scope=member_scope,
        charts=False,  # the strip: the six totals
    )
    return found[0], found[1], figures


async def register_list(request: Request) -> Response:
    v = await viewer(request)
    saved = _saved(v)
    try:
        number = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        number = 1
    console = console_of(request)

    def read() -> dict[str, Any]:
        # The staff table once: the scope of every read below, and the filter's choices.
        members = console.staff.list()
        scope = scope_for(v.member, members, console.web.manager_scope)
        filters = filters_of(saved, now=console.clock())
        total, shown, figures = list_page(console, scope, filters, number)
        pages = max(1, -(-total // PAGE_SIZE))
        if number > pages:
            total, shown, figures = list_page(console, scope, filters, pages)
        return {
            "records": [_row(r) for r in shown],
            "total": total,
            "summary": summary_totals(figures),
            "period": period_words(figures),
            "duties": duty_counts(console.register, scope, console.clock()),
            "page_number": min(number, pages),
            "pages": pages,
            "staff_logins": _staff_choices(members, scope),
        }

    listed = await asyncio.to_thread(read)
    return await page(
        request,
        v,
        "register_list.html",
        {
            **listed,
            "saved": saved,
            "consent_values": [(c, CONSENT_WORDS[c]) for c in CONSENT_VALUES],
        },
    )


def _row(r: Record) -> dict[str, Any]:
    recipients = [str(x.get("address", "")) for x in r.recipients]
    if r.kind == "request":  # a request received: who asked, where a message has its "to"
        recipients = [f"from {fmt.requester(r)}"]
    return {
        "seq": r.seq,
        "when": fmt.local_time(r.at),
        "staff": r.staff or (fmt.PURGED if r.purged else ""),
        "to": recipients,
        "organisations": ", ".join(r.organisations),
        "consent": CONSENT_WORDS.get(r.consent, r.consent) if r.kind == "accepted" else "",
        "family": r.family,
        "status": r.status,
        "notes": fmt.notes(r),
        "incomplete": bool(r.missing),
        "held": r.retention_hold,
        "refused": r.kind == "refused",
    }


async def register_filter(request: Request) -> Response:
    v = await viewer(request)
    form = await checked_form(request, v.session)
    if text(form, "action") == "clear":
        v.session.state["register"] = {}
    else:
        saved: dict[str, Any] = {k: text(form, k, 200) for k in FILTER_TEXT if text(form, k)}
        saved.update({k: True for k in FILTER_FLAGS if form.get(k)})
        bad = [k for k in ("since", "until") if k in saved and _day(saved[k]) is None]
        if bad:
            await flash(request, v, f"Not a date (YYYY-MM-DD): {', '.join(bad)}", error=True)
            return see_other("/register")
        v.session.state["register"] = saved
    await asyncio.to_thread(console_of(request).sessions.save_state, v.session)
    return see_other("/register")


async def register_export(request: Request) -> Response:
    v = await viewer(request)
    console = console_of(request)
    now = console_of(request).clock()
    # As `register export`: requests received too (the list shows messages only).
    records = await readable_records(request, v, filters_of(_saved(v), ROOT_KINDS, now=now))
    body = csv_text(records)
    await asyncio.to_thread(console.audit, v.login, "register exported", {"records": len(records)})
    name = f"register-{datetime.now():%Y%m%d-%H%M}.csv"
    return download(body, name, "text/csv; charset=utf-8")


async def verify_now(request: Request) -> Response:
    """Start the check; a small register answers at once, a large one shows its progress."""
    v = await viewer(request)
    await checked_form(request, v.session)
    monitor = console_of(request).verifier
    monitor.start()
    if await monitor.wait(VERIFY_WAIT):
        return await _verified(request, v, monitor.status)
    return see_other("/register/verify")


async def verify_progress(request: Request) -> Response:
    """How far the running check got, refreshed by the page itself (no script: the CSP
    allows none) until it ends; then the register with the result."""
    v = await viewer(request)
    monitor = console_of(request).verifier
    running = monitor.running
    if running is None:
        return await _verified(request, v, monitor.status)
    return await page(
        request, v, "register_verify.html", {"running": running, "refresh": VERIFY_REFRESH}
    )


async def _verified(request: Request, v: Viewer, status: VerifyStatus) -> Response:
    if not status.ok:
        text = f"REGISTER FAILED VERIFICATION: {status.first_problem}"
    elif not status.checkpointed:  # REG-11: as `register verify` says it
        text = (
            "Register not verified: no checkpoint: truncation cannot be detected "
            f"(the chain itself is intact: {status.count} entries)."
        )
    else:
        text = f"Register verified: {status.count} entries, chain intact."
    await flash(request, v, text, error=not (status.ok and status.checkpointed))
    return see_other("/register")


async def admin_trail(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    records = await asyncio.to_thread(console.register.records, Filters(kinds=("admin", "purge")))
    records.reverse()
    rows = []
    for r in records[:500]:
        d = r.data
        details = ", ".join(f"{k}: {val}" for k, val in sorted(d.get("details", {}).items()))
        rows.append(
            (r.seq, fmt.local_time(r.at), d.get("actor", ""), d.get("action", r.kind), details)
        )
    return await page(request, v, "admin_trail.html", {"rows": rows, "total": len(records)})


routes = [
    Route("/register", register_list, methods=["GET"]),
    Route("/register/filter", register_filter, methods=["POST"]),
    Route("/register/export.csv", register_export, methods=["GET"]),
    Route("/register/verify", verify_now, methods=["POST"]),
    Route("/register/verify", verify_progress, methods=["GET"]),
    Route("/register/admin", admin_trail, methods=["GET"]),
]
