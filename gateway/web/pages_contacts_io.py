"""Contacts in and out as CSV (admins): import after a preview, export.

The preview is the import's own plan (:func:`gateway.directory.contacts_import.plan_import`):
rows to add, to update and unchanged, and the problems, before anything is written. The
import itself is :func:`gateway.directory.contacts_import.import_csv` with the CLI's fax veto,
all rows or none, one audit row and one register entry per changed contact in the import's
own transaction. The CSV travels in the form body, never the URL.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filters.fax_route import FaxRoutes
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_csv import COLUMNS, EXAMPLE, REQUIRED, CSVImportError, export_csv
from gateway.directory.contacts_import import ImportPlan, import_csv, plan_import
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.contact_checks import flags_note, sweep_domains
from gateway.web.render import download, flash, page, see_other

MAX_CSV = 4 * 1024 * 1024
_HELP = {"columns": COLUMNS, "required": REQUIRED, "example": EXAMPLE}


def _preview(repo: ContactRepository, csv_text: str, routes: FaxRoutes) -> dict[str, object]:
    plan = plan_import(repo, csv_text, routes.refusal, update=True)
    warnings = {}
    for row in plan.writes:
        c = row.contact
        sign = routes.classify(c.address) if c is not None and c.kind == "address" else None
        if c is not None and sign is not None and not c.not_fax_by:
            warnings[row.line] = f"looks like {sign.reason}: refused until an admin attests it"
    return {"preview": plan, "warnings": warnings, "ok": _ok(plan)}


def _ok(plan: ImportPlan) -> bool:
    return not plan.problems and bool(plan.writes)


async def import_page(request: Request) -> Response:
    v = await viewer(request, "admin")
    return await page(
        request, v, "contacts_import.html", {"preview": None, "csv_text": "", **_HELP}
    )


async def import_preview(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    form = await checked_form(request, v.session)
    upload = form.get("file")
    csv_text = text(form, "csv_text", MAX_CSV)
    if upload is not None and not isinstance(upload, str):
        raw = await upload.read()
        await form.close()  # the upload's temporary file
        if raw:
            try:
                csv_text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                return await page(
                    request,
                    v,
                    "contacts_import.html",
                    {
                        "preview": None,
                        "csv_text": "",
                        "error": "The file is not UTF-8 text.",
                        **_HELP,
                    },
                    400,
                )
    preview = await asyncio.to_thread(_preview, console.contacts, csv_text, console.fax_routes)
    return await page(
        request, v, "contacts_import.html", {**preview, "csv_text": csv_text, **_HELP}
    )


async def import_apply(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    form = await checked_form(request, v.session)
    csv_text = text(form, "csv_text", MAX_CSV)
    try:
        plan = await asyncio.to_thread(
            import_csv,
            console.recording_contacts(),
            csv_text,
            v.login,
            console.fax_routes.refusal,
            update=True,
        )
    except CSVImportError as exc:
        await flash(request, v, f"{exc}: " + "; ".join(exc.problems[:10]), error=True)
        return see_other("/contacts/import")
    added = [r.contact for r in plan.of("add") if r.contact is not None]
    flags = await sweep_domains(console, {c.domain for c in added}) if added else []
    await flags_note(
        request,
        v,
        flags,
        f"Imported: {len(added)} new, {len(plan.of('update'))} updated, "
        f"{len(plan.of('unchanged'))} unchanged.",
    )
    return see_other("/contacts")


async def export(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    body = await asyncio.to_thread(export_csv, console.contacts)
    await asyncio.to_thread(console.audit, v.login, "contacts exported", {})
    return download(body, "contacts.csv", "text/csv; charset=utf-8")


routes = [
    Route("/contacts/import", import_page, methods=["GET"]),
    Route("/contacts/import/preview", import_preview, methods=["POST"]),
    Route("/contacts/import", import_apply, methods=["POST"]),
    Route("/contacts/export.csv", export, methods=["GET"]),
]
