"""Serving the console with uvicorn: loopback by default, HTTPS with the gateway's own
certificate when ``[web] tls = true`` (TLS 1.2 minimum, as the SMTP listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from gateway.settings import Settings
from gateway.tls import server_context


def config(
    app: Starlette, settings: Settings, *, https: bool, host: str, port: int
) -> uvicorn.Config:
    def tls(_: uvicorn.Config, __: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return server_context(settings.tls.cert_file, settings.tls.key_file)

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # structlog is the gateway's logger; uvicorn's own stays quiet
        access_log=False,  # gateway.web.security logs each request without query strings
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For would let a client dodge the throttle
        lifespan="on",
        ssl_context_factory=tls if https else None,
    )


class ConsoleServer:
    """uvicorn in the running event loop, on a socket bound beforehand (port 0 in tests)."""

    def __init__(self, app: Starlette, settings: Settings, *, https: bool, host: str, port: int):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(config(app, settings, https=https, host=host, port=self.port))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.server.config.ssl_context_factory else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self.sock.close()
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)

    async def wait(self) -> None:
        """Until uvicorn stops (it handles SIGTERM and SIGINT itself)."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sock.close()
