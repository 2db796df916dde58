"""Composition root: settings -> store -> filters -> listeners + delivery worker.

Parts start in order and stop in reverse. Tests build a :class:`Gateway` on port 0 with
the same code the ``serve`` command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from cryptography.hazmat.primitives import hashes

from filters.fax_route import load_providers, providers_path
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_retention import purge_removed_history
from gateway.directory.contacts_sealed import keyring_for
from gateway.directory.mx_sweep import default_resolver, sweep
from gateway.directory.staff import StaffDirectory
from gateway.errors import ConfigError
from gateway.events import NullRecorder, Recorder
from gateway.holds.duties import DutyReminder
from gateway.holds.service import Holds
from gateway.listening import Listening, bind_listeners
from gateway.metrics import Metrics
from gateway.opening import missing_policy, open_parts
from gateway.pipeline import Pipeline
from gateway.queue.delivery import DeliveryWorker
from gateway.queue.spool import Spool
from gateway.queue.transports import Transport
from gateway.register.ledger import Register
from gateway.register.purge import purge
from gateway.settings import Settings
from gateway.settings.web import web_settings
from gateway.smtp.context import ListenerContext
from gateway.smtp.handler import Handler
from gateway.smtp.limits import ConnectionLimiter
from gateway.smtp.listener import GatewaySMTP
from gateway.smtp.slot_table import SlotTable
from gateway.throttle import LoginThrottle, Peers

log = structlog.get_logger("gateway.server")


# Expiry, escalation (2 hours for safeguarding) and the daily reminders are checked every
# five minutes; approvals re-check expiry themselves.
HELD_CHECK_INTERVAL = 300.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Bound:
    kind: str  # "starttls" | "implicit_tls"
    host: str
    port: int


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        recorder: Recorder | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        primary: bool = True,
        peers: Peers | None = None,
        connections: SlotTable | None = None,
    ) -> None:
        """``primary``: the one process of ``serve`` (the first worker when there are
        several, :mod:`gateway.supervisor`) that runs the periodic jobs, the metrics
        endpoint and the checkpoint at stop; the others only listen and deliver.
        ``peers``: the other workers, told of every failed and successful login so the
        login throttle holds across them all. ``connections``: the connection table all
        workers share, so ``[limits] max_connections*`` hold across them."""
        self.settings = settings
        self.primary = primary
        self.peers = peers
        # Every file, key, folder and filter, opened as `check-config` opens them.
        parts = open_parts(
            settings, with_register=recorder is None, transport=transport, clock=clock
        )
        self.store = parts.store
        self.keyring = parts.keyring
        # The disclosure register records every acceptance, refusal and outcome in the
        # same transaction as the queue change. Tests may pass another real recorder.
        self.register: Register | None = parts.register
        self.recorder: Recorder = recorder or self.register or NullRecorder()
        self.spool = Spool(self.store, self.keyring, self.recorder, clock=clock)
        self.staff = StaffDirectory(
            self.store,
            cost=settings.auth.password_hash_cost,
            cache_ttl=settings.auth.cache_ttl,
        )
        self.pipeline = Pipeline(parts.filters)
        if missing_policy(settings.pipeline.filters):  # allow_partial_pipeline = true
            log.info("partial_pipeline", missing=missing_policy(settings.pipeline.filters))
        self.worker = DeliveryWorker(settings, self.spool, parts.transport, clock=clock)
        self.holds = Holds(
            self.spool,
            self.staff,
            settings.hostname,
            sender=settings.notices_from,
            console_url=web_settings(settings).public_url,
            clock=clock,
        )
        # Daily with the held-message reminders: "person informed" overdue, holds to review.
        self.duties: DutyReminder | None = None
        if self.register is not None:
            self.duties = DutyReminder(
                self.register,
                self.holds.notify,
                self.staff,
                console_url=web_settings(settings).public_url,
                clock=clock,
            )
        self.handler = Handler(settings, self.pipeline, self.spool, self.holds, self.worker)
        self.server_tls = parts.tls
        self.tls = parts.tls.context  # the listeners keep it; reload_tls changes what it serves
        # [metrics] listen: the Prometheus endpoint (counts only); it counts failed logins.
        self.metrics: Metrics | None = None
        if settings.metrics.enabled and primary:
            self.metrics = Metrics(settings.metrics, self.store, self.register, clock)
        a = settings.auth
        self.listener_ctx = ListenerContext(
            settings=settings,
            staff=self.staff,
            throttle=(self.metrics.login_throttle if self.metrics else LoginThrottle)(
                per_client=a.max_failures_per_client,
                per_account=a.max_failures_per_account,
                window=a.lockout_seconds,
            ),
            limiter=ConnectionLimiter.from_settings(settings.limits, connections, peers),
        )
        self.bound: list[Bound] = []
        self._servers: list[asyncio.Server] = []
        self._worker_task: asyncio.Task[None] | None = None
        self._jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = []
        self._job_tasks: list[asyncio.Task[None]] = []
        if self.register is not None:
            reg = self.register
            self.every(
                "register-checkpoint",
                settings.register.checkpoint_interval,
                lambda: self.store.run(reg.checkpoint),
            )
            self.every(
                "register-purge", 86400.0, lambda: self.store.run(lambda: purge(reg, actor="serve"))
            )
            # A removed contact's change history goes with the register's retention (PRIV-2).
            contacts = ContactRepository(
                self.store, lambda: dt.datetime.fromtimestamp(clock(), dt.UTC), keyring=reg.keyring
            )
            self.every(
                "contacts-history-purge",
                86400.0,
                lambda: self.store.run(purge_removed_history, contacts, reg.retention_days),
            )
        if self.metrics is not None and self.register is not None:
            m = self.metrics
            self.every("metrics-register-verify", settings.metrics.verify_interval, m.verify_job)
        # Held messages: expire those past their time, remind their approvers daily.
        self.every("held-messages", HELD_CHECK_INTERVAL, self._held_messages)
        if "contacts" in settings.pipeline.filters:
            self.every("contacts-mx-sweep", 86400.0, self._mx_sweep)

    async def _held_messages(self) -> None:
        expired = await self.store.run(self.holds.expire_due)
        escalated = await self.store.run(self.holds.escalate)
        reminded = await self.store.run(self.holds.remind)
        if self.duties is not None:
            reminded += await self.store.run(self.duties.remind)
        if expired or escalated or reminded:
            self.worker.wake()  # their notices are queued

    async def _mx_sweep(self) -> None:
        """Daily: flag contacts whose mail now goes to a fax service or whose MX changed."""
        providers_file = self.settings.filter.get("fax_route", {}).get("providers_file")
        providers = load_providers(providers_path(providers_file, self.settings.base_dir))
        repo = ContactRepository(self.store, _utcnow, keyring=keyring_for(self.settings))
        flags = await sweep(repo, default_resolver(self.settings.dns), providers)
        log.info("contacts_mx_sweep", flagged=len(flags))

    def every(self, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` soon after start, then every ``interval`` seconds (daily sweeps)."""
        self._jobs.append((name, interval, job))

    async def _run_job(
        self, name: str, interval: float, job: Callable[[], Awaitable[object]]
    ) -> None:
        while True:
            try:
                await job()
                log.info("job_done", job=name)
            except Exception as exc:
                log.exception("job_failed", job=name, error=type(exc).__name__)
            await asyncio.sleep(interval)

    async def start(
        self, *, deliver: bool = True, listening: Sequence[Listening] | None = None
    ) -> None:
        """``listening``: sockets ``serve`` bound before starting its workers; by
        default this process binds the ``[listen]`` addresses itself."""
        loop = asyncio.get_running_loop()
        for item in bind_listeners(self.settings) if listening is None else listening:
            implicit = item.kind == "implicit_tls"
            for sock in item.sockets:
                server = await loop.create_server(
                    self._factory(implicit),
                    sock=sock,
                    ssl=self.tls if implicit else None,
                    ssl_handshake_timeout=self.settings.limits.idle_timeout if implicit else None,
                )
                self._servers.append(server)
            host, port = item.host_port
            self.bound.append(Bound(item.kind, host, port))
            log.info("listening", kind=item.kind, host=host, port=port)
        if self.metrics is not None:
            host, port = self.metrics.start()
            self.bound.append(Bound("metrics", host, port))
            log.info("listening", kind="metrics", host=host, port=port)
        if deliver:
            self._worker_task = asyncio.create_task(self.worker.run())
        if self.peers is not None:
            self.peers.listen(self.listener_ctx.throttle, self.listener_ctx.limiter.woken)
        if self.primary:  # each job in one process only
            self._job_tasks = [asyncio.create_task(self._run_job(*j)) for j in self._jobs]

    def _factory(self, implicit: bool) -> Callable[[], GatewaySMTP]:
        tls: ssl.SSLContext | None = None if implicit else self.tls

        def build() -> GatewaySMTP:
            return GatewaySMTP(
                self.handler, self.listener_ctx, implicit_tls=implicit, tls_context=tls
            )

        return build

    def reload_tls(self) -> bool:
        """SIGHUP (``systemctl reload``): read the listeners' certificate and key again, for
        new connections; open ones and the queue are untouched. A pair that does not load
        is logged and the certificate in use is kept."""
        try:
            cert = self.server_tls.reload()
        except ConfigError as exc:
            log.error("tls_reload_failed", error=str(exc))
            return False
        log.info(
            "tls_reloaded",
            cert_sha256=cert.fingerprint(hashes.SHA256()).hex(),
            not_after=cert.not_valid_after_utc.isoformat(),
        )
        return True

    def port(self, kind: str) -> int:
        return next(b.port for b in self.bound if b.kind == kind)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        if self.peers is not None:
            self.peers.close()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)
        for task in self._job_tasks:
            task.cancel()
        await asyncio.gather(*self._job_tasks, return_exceptions=True)
        await self.worker.stop()
        await self.worker.transport.close()  # QUIT the kept upstream connections
        if self.register is not None and self.primary:
            try:
                await self.store.run(self.register.checkpoint)
            except Exception as exc:  # stop anyway; verify will report the mismatch
                log.error("register_checkpoint_failed", error=type(exc).__name__)
        if self._worker_task is not None:
            # It gives back what it claimed while stopping; then it is cancelled if need be.
            await asyncio.wait({self._worker_task}, timeout=5)
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self.store.close()
        log.info("stopped")
