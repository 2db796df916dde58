"""Response headers on every page, a cross-site POST guard, and the request log.

- CSP allows nothing but our own style sheet and forms posting to ourselves: the
  console has no JavaScript at all, so an injected script has nowhere to run.
- ``X-Frame-Options: DENY`` and ``frame-ancestors 'none'`` stop click-jacking.
- ``Cache-Control: no-store`` on every page: register, contact and queue pages hold
  personal data and must not stay in a browser or proxy cache (policy, "Storage of
  information": kept in a secure place at all times). Only the style sheet is cached.
- A POST that the browser labels cross-site (``Sec-Fetch-Site``, or failing that an
  ``Origin`` that is not this console) is refused before any handler runs; the
  per-session CSRF token in every form (:mod:`gateway.web.auth`) is the main defence,
  this is the second.
- The request log names the method, path and status only: paths never carry personal
  data (filters and searches travel in POST bodies and live in the session).
"""

from __future__ import annotations

import time

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("gateway.web")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_ALWAYS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
STATIC_PREFIX = "/static/"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = time.monotonic()
        status = 0

        if scope["method"] == "POST" and not _same_origin(Headers(scope=scope), scope):
            log.warning("web_cross_site_post", path=path)
            response = PlainTextResponse("Cross-site form submissions are refused.", 403)
            await response(scope, receive, self._wrap(send, path))
            return

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await self._wrap(send, path)(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info(
                "web_request",
                method=scope["method"],
                path=path,
                status=status,
                ms=round((time.monotonic() - started) * 1000),
            )

    def _wrap(self, send: Send, path: str) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers[name] = value
                if path.startswith(STATIC_PREFIX):
                    headers["Cache-Control"] = "private, max-age=3600"
                else:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                if self.https:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        return wrapped


def _same_origin(headers: Headers, scope: Scope) -> bool:
    # Fetch Metadata: browsers set Sec-Fetch-Site themselves and pages cannot forge it.
    # (With Referrer-Policy no-referrer a same-origin form posts "Origin: null", so the
    # Origin header is only consulted when the browser sends no Sec-Fetch-Site.)
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True  # older browsers and non-browser clients: the CSRF token decides
    # Compare the host only: behind a TLS-terminating proxy the scheme seen here differs.
    return origin.partition("://")[2] == headers.get("host", "")
