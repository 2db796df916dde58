"""Sign-in (password, then a TOTP code when required) and sign-out.

Failed attempts are throttled per client address and per account with the SMTP AUTH
limits (AUTH-1; NIST SP 800-63B 5.2.2: the account limit holds even for the right
password). An unknown login and a wrong password get the same answer at the same cost
(AUTH-2: ``StaffDirectory.authenticate`` checks a dummy hash). Every sign-in, failed
attempt and sign-out is an entry in the register's admin trail.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.web.auth import (
    COOKIE,
    SIGNIN_COOKIE,
    CSRFRefused,
    SignInRequired,
    checked_form,
    client_address,
    console_of,
    landing,
    may_use_console,
    text,
    viewer,
)
from gateway.web.console import Console
from gateway.web.render import TEMPLATES, page, see_other
from gateway.web.sessions import Session, Stage

log = structlog.get_logger("gateway.web")
WRONG = "Wrong login or password."
# A code is good once: right after enrolling, the app may still show the one that confirmed it.
CODE_REFUSED = (
    "That code is wrong or was already used: wait for your app to show the next one "
    "(a new code comes every 30 seconds), then type that."
)


def _set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, secure=True, samesite="strict", path="/")


async def _audit(console: Console, actor: str, action: str, **details: str) -> None:
    await asyncio.to_thread(console.audit, actor, action, details)


def _signin_form(request: Request, error: str = "", status: int = 200) -> Response:
    console = console_of(request)
    token = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    response = TEMPLATES.TemplateResponse(
        request,
        "signin.html",
        {
            "viewer": None,
            "organisation": console.settings.organisation.name,
            "verify": None,
            "flash": {"text": error, "error": True} if error else None,
            "signin_token": token,
        },
        status_code=status,
    )
    _set_cookie(response, SIGNIN_COOKIE, token)
    return response


async def signin_page(request: Request) -> Response:
    try:
        v = await viewer(request, "staff")
    except SignInRequired:
        return _signin_form(request)
    return see_other(v.home)


async def signin(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    posted = text(form, "signin_token", 100)
    if not cookie or not hmac.compare_digest(cookie, posted):
        raise CSRFRefused
    login, password = text(form, "login", 320).lower(), form.get("password")
    client = client_address(request)
    if not login or not isinstance(password, str) or not password:
        return _signin_form(request, "Give your login and password.", 400)
    blocked = console.throttle.blocked(client, login)
    if blocked:
        log.warning("web_signin_throttled", client=client, limit=blocked)
        return _signin_form(request, "Too many failed attempts. Wait a while, then try again.", 429)
    member = await asyncio.to_thread(console.staff.authenticate, login, password)
    if member is None:
        console.throttle.failed(client, login)
        log.warning("web_signin_failed", client=client)
        await _audit(console, login, "console sign-in failed", client=client, step="password")
        return _signin_form(request, WRONG, 401)
    if not may_use_console(member):
        await _audit(console, login, "console sign-in refused", client=client, reason="role")
        return _signin_form(request, "This account has no access to the review console.", 403)
    enrolled = await asyncio.to_thread(console.totp.enrolled, login)
    if not enrolled and member.role in console.web.require_totp:
        await _audit(console, login, "console sign-in refused", client=client, reason="no TOTP")
        return _signin_form(
            request,
            "Your role needs a second factor and none is set up yet. Ask an admin for "
            "an enrolment link (c4f-gateway web enrol-link).",
            403,
        )
    stage: Stage = "totp" if enrolled else "full"
    session = await asyncio.to_thread(console.sessions.create, login, stage)
    if stage == "full":
        console.throttle.succeeded(client, login)
        await _audit(console, login, "console sign-in", client=client, second_factor="none")
        log.info("web_signin", login=login)
    response = see_other("/signin/code" if stage == "totp" else landing(member.role))
    _set_cookie(response, COOKIE, session.token)
    response.delete_cookie(SIGNIN_COOKIE, path="/", secure=True, httponly=True)
    return response


async def _pending(request: Request) -> Session | None:
    console = console_of(request)
    session = await asyncio.to_thread(console.sessions.get, request.cookies.get(COOKIE, ""))
    return session if session is not None and session.stage == "totp" else None


async def code_page(request: Request) -> Response:
    session = await _pending(request)
    if session is None:
        return see_other("/signin")
    return await _code_form(request, session)


async def _code_form(
    request: Request, session: Session, error: str = "", status: int = 200
) -> Response:
    return await page(
        request,
        None,
        "signin_code.html",
        {
            "csrf": session.csrf,
            "flash": {"text": error, "error": True} if error else None,
        },
        status,
    )


async def code(request: Request) -> Response:
    console = console_of(request)
    session = await _pending(request)
    if session is None:
        return see_other("/signin")
    form = await checked_form(request, session)
    client, login = client_address(request), session.login
    if console.throttle.blocked(client, login):
        return await _code_form(
            request, session, "Too many failed attempts. Wait a while, then try again.", 429
        )
    if not await asyncio.to_thread(console.totp.check, login, text(form, "code", 20)):
        console.throttle.failed(client, login)
        console.staff.verified.forget(login)  # a failure counts towards a lockout
        log.warning("web_signin_failed", client=client, step="totp")
        await _audit(console, login, "console sign-in failed", client=client, step="totp")
        return await _code_form(request, session, CODE_REFUSED, 401)
    member = await asyncio.to_thread(console.staff.get, login)
    full = await asyncio.to_thread(console.sessions.promote, session)
    console.throttle.succeeded(client, login)
    await _audit(console, login, "console sign-in", client=client, second_factor="totp")
    log.info("web_signin", login=login)
    response = see_other(landing(member.role if member else ""))
    _set_cookie(response, COOKIE, full.token)
    return response


async def signout(request: Request) -> Response:
    console = console_of(request)
    token = request.cookies.get(COOKIE, "")
    session = await asyncio.to_thread(console.sessions.get, token)
    if session is not None:
        await checked_form(request, session)
        await asyncio.to_thread(console.sessions.end, token)
        await _audit(console, session.login, "console sign-out", client=client_address(request))
    response = see_other("/signin")
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True)
    return response


async def home(request: Request) -> Response:
    v = await viewer(request, "staff")
    return see_other(v.home)


routes = [
    Route("/", home),
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signin/code", code_page, methods=["GET"]),
    Route("/signin/code", code, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
]
