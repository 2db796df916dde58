"""Contacts in and out as CSV (admins): import after a preview, export.

The preview reads each row as the import will (:func:`gateway.web.contact_forms.
preview_import`); the import itself is :func:`gateway.directory.contacts_csv.import_csv` with the
CLI's fax veto, all rows or none. The CSV travels in the form body, never the URL.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.directory.contacts_csv import CSVImportError, export_csv, import_csv
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.contact_checks import flags_note, sweep_domains
from gateway.web.contact_forms import fax_veto, preview_import
from gateway.web.render import flash, page, see_other

MAX_CSV = 4 * 1024 * 1024


async def import_page(request: Request) -> Response:
    v = await viewer(request, "admin")
    return await page(request, v, "contacts_import.html", {"preview": None, "csv_text": ""})


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
                    {"preview": None, "csv_text": "", "error": "The file is not UTF-8 text."},
                    400,
                )
    preview = await asyncio.to_thread(
        preview_import, console.contacts, csv_text, console.fax_routes
    )
    return await page(
        request, v, "contacts_import.html", {"preview": preview, "csv_text": csv_text}
    )


async def import_apply(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    form = await checked_form(request, v.session)
    csv_text = text(form, "csv_text", MAX_CSV)
    try:
        added = await asyncio.to_thread(
            import_csv, console.contacts, csv_text, v.login, fax_veto(console.fax_routes)
        )
    except CSVImportError as exc:
        await flash(request, v, f"{exc}: " + "; ".join(exc.problems[:10]), error=True)
        return see_other("/contacts/import")
    await asyncio.to_thread(
        console.audit,
        v.login,
        "contacts imported",
        {"count": len(added), "contacts": ", ".join(c.ref for c in added)},
    )
    flags = await sweep_domains(console, {c.domain for c in added}) if added else []
    await flags_note(request, v, flags, f"Imported {len(added)} contact(s).")
    return see_other("/contacts")


async def export(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    body = await asyncio.to_thread(export_csv, console.contacts)
    await asyncio.to_thread(console.audit, v.login, "contacts exported", {})
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )


routes = [
    Route("/contacts/import", import_page, methods=["GET"]),
    Route("/contacts/import/preview", import_preview, methods=["POST"]),
    Route("/contacts/import", import_apply, methods=["POST"]),
    Route("/contacts/export.csv", export, methods=["GET"]),
]
