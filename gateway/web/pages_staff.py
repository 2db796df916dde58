"""Console accounts (admins): who may use the console, with which role and second factor,
and who has no line manager (their held messages wait for an admin; not warned of for
admins, whose held messages another admin decides anyway).

Role changes call ``StaffDirectory.set_role`` as ``c4f-gateway staff role`` does; a
TOTP reset removes the secret as ``c4f-gateway web totp-remove`` does. Either change
signs that person out everywhere. "Issue enrolment link" issues the one-time link of
``c4f-gateway web enrol-link`` (:mod:`gateway.web.enrol_links`) and shows it once, in the
answer to that POST (never in a flash kept in the session, nor in a log). The login
travels in the form body, not the URL.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.directory.staff import ROLES
from gateway.register.formats import local_time
from gateway.settings.web import REVIEW_ROLES
from gateway.web import enrol_links
from gateway.web.auth import checked_form, console_of, text, viewer
from gateway.web.render import flash, page, see_other


async def staff_list(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    members = await asyncio.to_thread(console.staff.list)
    enrolled = await asyncio.to_thread(console.totp.logins)
    roles = {m.login: m.role for m in members}
    return await page(
        request,
        v,
        "staff.html",
        {
            "rows": [
                {
                    "login": m.login,
                    "role": m.role,
                    "managers": ", ".join(m.managers),
                    # As gateway.holds.service counts them: only a manager or admin account
                    # decides. Not said of admins: another admin decides theirs, as intended.
                    "no_manager": m.role != "admin"
                    and not any(roles.get(x) in REVIEW_ROLES for x in m.managers),
                    "totp": m.login in enrolled,
                    "created": local_time(m.created),
                }
                for m in members
            ],
            "roles": ROLES,
            "require_totp": console.web.require_totp,
        },
    )


async def change(request: Request) -> Response:
    v = await viewer(request, "admin")
    console = console_of(request)
    form = await checked_form(request, v.session)
    login, action = text(form, "login", 320).lower(), text(form, "action")
    if await asyncio.to_thread(console.staff.get, login) is None:
        await flash(request, v, "No such account.", error=True)
        return see_other("/staff")
    if action == "role":
        role = text(form, "role")
        if role not in ROLES:
            await flash(request, v, "Choose a role.", error=True)
            return see_other("/staff")
        if login == v.login and role != "admin":
            await flash(request, v, "You cannot take away your own admin role.", error=True)
            return see_other("/staff")
        await asyncio.to_thread(console.staff.set_role, login, role)
        await asyncio.to_thread(console.sessions.end_all, login)
        await asyncio.to_thread(
            console.audit, v.login, "staff role", {"login": login, "role": role}
        )
        await flash(request, v, f"{login} is now {role}.")
    elif action == "totp-reset":
        await asyncio.to_thread(console.totp.remove, login)
        await asyncio.to_thread(console.sessions.end_all, login)
        await asyncio.to_thread(console.audit, v.login, "totp removed", {"login": login})
        await flash(
            request,
            v,
            f"Second factor removed for {login}; issue them an enrolment link for a new one.",
        )
    elif action == "enrol-link":
        link = await asyncio.to_thread(enrol_links.issue, console, login, v.login)
        return await page(request, v, "staff_enrol_link.html", {"link": link})
    return see_other("/staff")


routes = [
    Route("/staff", staff_list, methods=["GET"]),
    Route("/staff", change, methods=["POST"]),
]
