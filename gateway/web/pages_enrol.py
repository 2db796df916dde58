"""Second factor self-service: the one-time enrolment link an admin issues
(``c4f-gateway web enrol-link LOGIN``).

The person opens the link, gives their password (throttled and recorded as sign-in is),
then sees a QR code (SVG made on the server by ``segno``; the CSP allows no script) and
the key as text, and confirms with a current code; only then is the second factor
active, and every session of that person ends. The link's token is in the URL, which a
cross-site form cannot know, and the password step's proof is a ``SameSite=Strict``
cookie: that is the forms' CSRF defence (there is no session yet).
"""

from __future__ import annotations

import asyncio

import segno
import structlog
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.web.auth import client_address, console_of, may_use_console, text
from gateway.web.render import page, see_other
from gateway.web.totp import EnrolLink

log = structlog.get_logger("gateway.web")
# "__Host-": sent only over HTTPS (or to localhost), only to this host (RFC 6265bis).
ENROL_COOKIE = "__Host-c4f-enrol"
GONE = "This enrolment link is unknown, used or expired. Ask an admin for a new one."


def qr_svg(uri: str) -> Markup:
    """The otpauth:// URI as an inline SVG QR code. segno writes only numbers, its own
    element names and the title given here (escaped), so the markup is safe to embed."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, border=4, title="QR code of your second-factor key", omitsize=False
    )
    return Markup(svg)  # noqa: S704


async def _gone(request: Request) -> Response:
    return await page(request, None, "enrol_gone.html", {"text": GONE}, 410)


async def _password_form(
    request: Request, link: EnrolLink, token: str, error: str = "", status: int = 200
) -> Response:
    return await page(
        request,
        None,
        "enrol_password.html",
        {
            "login": link.login,
            "action": f"/enrol/{token}",
            "flash": {"text": error, "error": True} if error else None,
        },
        status,
    )


async def _key_page(
    request: Request, link: EnrolLink, token: str, secret: str, error: str = "", status: int = 200
) -> Response:
    console = console_of(request)
    uri = console.totp.uri(secret, link.login, console.settings.organisation.name)
    return await page(
        request,
        None,
        "enrol_key.html",
        {
            "login": link.login,
            "qr": qr_svg(uri),
            # Grouped by four for typing by hand; authenticator apps ignore the spaces.
            "key": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "action": f"/enrol/{token}/confirm",
            "flash": {"text": error, "error": True} if error else None,
        },
        status,
    )


async def _link(request: Request) -> tuple[str, EnrolLink | None]:
    token = str(request.path_params["token"])
    return token, await asyncio.to_thread(console_of(request).totp.link, token)


async def enrol_page(request: Request) -> Response:
    token, link = await _link(request)
    if link is None:
        return await _gone(request)
    proof = request.cookies.get(ENROL_COOKIE, "")
    secret = await asyncio.to_thread(console_of(request).totp.pending, link, proof)
    if secret is None:
        return await _password_form(request, link, token)
    return await _key_page(request, link, token, secret)


async def enrol_password(request: Request) -> Response:
    console = console_of(request)
    token, link = await _link(request)
    if link is None:
        return await _gone(request)
    form = await request.form()
    password, client = form.get("password"), client_address(request)
    if not isinstance(password, str) or not password:
        return await _password_form(request, link, token, "Give your password.", 400)
    if console.throttle.blocked(client, link.login):
        return await _password_form(
            request, link, token, "Too many failed attempts. Wait a while, then try again.", 429
        )
    member = await asyncio.to_thread(console.staff.authenticate, link.login, password)
    if member is None or not may_use_console(member):
        console.throttle.failed(client, link.login)
        log.warning("web_enrol_failed", client=client, step="password")
        await asyncio.to_thread(
            console.audit,
            link.login,
            "totp enrolment failed",
            {"client": client, "step": "password"},
        )
        return await _password_form(request, link, token, "Wrong password.", 401)
    console.throttle.succeeded(client, link.login)
    proof = await asyncio.to_thread(console.totp.start, link)
    response = see_other(f"/enrol/{token}")
    response.set_cookie(
        ENROL_COOKIE, proof, httponly=True, secure=True, samesite="strict", path="/"
    )
    return response


async def enrol_confirm(request: Request) -> Response:
    console = console_of(request)
    token, link = await _link(request)
    if link is None:
        return await _gone(request)
    proof = request.cookies.get(ENROL_COOKIE, "")
    secret = await asyncio.to_thread(console.totp.pending, link, proof)
    if secret is None:
        return see_other(f"/enrol/{token}")  # the password step first
    form = await request.form()
    client = client_address(request)
    if console.throttle.blocked(client, link.login):
        return await _key_page(
            request, link, token, secret, "Too many failed attempts. Wait a while.", 429
        )
    code = text(form, "code", 20)
    if not await asyncio.to_thread(console.totp.confirm, link, proof, code):
        console.throttle.failed(client, link.login)
        log.warning("web_enrol_failed", client=client, step="code")
        return await _key_page(
            request,
            link,
            token,
            secret,
            "That code is wrong. Check the time on your phone and use the newest code.",
            401,
        )
    console.throttle.succeeded(client, link.login)
    await asyncio.to_thread(console.sessions.end_all, link.login)
    await asyncio.to_thread(
        console.audit, link.login, "totp enrolled", {"login": link.login, "via": "link"}
    )
    log.info("web_totp_enrolled", login=link.login)
    response = await page(request, None, "enrol_done.html", {"login": link.login})
    response.delete_cookie(ENROL_COOKIE, path="/", secure=True, httponly=True)
    return response


routes = [
    Route("/enrol/{token}", enrol_page, methods=["GET"]),
    Route("/enrol/{token}", enrol_password, methods=["POST"]),
    Route("/enrol/{token}/confirm", enrol_confirm, methods=["POST"]),
]
