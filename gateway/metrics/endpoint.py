"""The metrics endpoint of ``serve``: prometheus_client's HTTP server on ``[metrics]
listen``, the periodic ``register verify``, and the login throttle that counts failures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from gateway.metrics.scrape import Collector
from gateway.register.ledger import Register
from gateway.settings.metrics import MetricsSettings
from gateway.store import Store
from gateway.throttle import LoginThrottle

log = structlog.get_logger("gateway.metrics")


class CountingThrottle(LoginThrottle):
    """The listener's login throttle, telling the metrics of every failed login."""

    def __init__(self, *, on_failure: Callable[[], None], **kw: Any) -> None:
        super().__init__(**kw)
        self.on_failure = on_failure

    def failed(self, client: str, account: str) -> None:
        super().failed(client, account)
        self.on_failure()


class Metrics:
    """The endpoint: started and stopped by :class:`gateway.server.Gateway`."""

    def __init__(
        self,
        settings: MetricsSettings,
        store: Store,
        register: Register | None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.register = register
        self.clock = clock
        self.collector = Collector(store, register, clock)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def login_throttle(self, *, per_client: int, per_account: int, window: float) -> LoginThrottle:
        """The listener's :class:`LoginThrottle`, counting failed logins for the endpoint."""
        return CountingThrottle(
            on_failure=self.collector.login_failures.inc,
            per_client=per_client,
            per_account=per_account,
            window=window,
        )

    async def verify_job(self) -> None:
        """:meth:`verify` in a worker thread (a periodic job of ``serve``)."""
        await asyncio.to_thread(self.verify)

    def verify(self) -> None:
        """Run ``register verify`` and keep its result (blocking: call it in a thread)."""
        if self.register is None:
            return
        c = self.collector
        try:
            result = self.register.verify()
        except Exception:
            c.verified.set(0)
            c.verify_problems.set(1)
            c.verified_at.set(self.clock())
            raise
        c.verified.set(1 if result.proven else 0)
        c.verify_problems.set(len(result.problems))
        c.uncheckpointed.set(result.uncheckpointed)
        c.verified_at.set(self.clock())

    def start(self) -> tuple[str, int]:
        """Listen; returns the address bound (the port is chosen when it is 0)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        host, port = self.settings.host_port
        self._server, self._thread = start_http_server(port, host, registry=registry)
        bound = self._server.server_address
        if not self.settings.loopback:
            log.warning("metrics_not_loopback", host=host, detail="anyone who reaches it reads it")
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
