"""The Prometheus endpoint of ``serve`` (``[metrics] listen``): counts, never personal data.

Where each number comes from:

- accepted, refused, per-recipient delivery outcomes, hold steps and the delivery latency
  (acceptance to the upstream's 250): the disclosure register, read forward at each scrape
  from the entry that was newest when ``serve`` started. Only committed entries are seen,
  each once, whichever process wrote them (a ``held approve`` on the command line too), so
  the counters agree with the register by construction and a rolled-back acceptance is
  never counted;
- queue depth by state, the held count and the oldest ages: the queue table, at scrape time;
- failed SMTP logins: the listener's login throttle (:class:`CountingThrottle`);
- the register's integrity: a ``register verify`` run every ``[metrics] verify_interval``
  (:meth:`Metrics.verify`, a job of ``serve``), and the time of the newest signed checkpoint.

Labels carry only the gateway's own fixed words: queue states, outcomes, hold steps, reply
codes and a refusal's reference when it names a rule (``DISC-TAG``, ``NOTICE-SIGNED``).
A per-refusal trace code (``R-1A2B``) is counted as ``per-refusal``; addresses, logins,
subjects and queue IDs are never labels. Scrapes are answered by prometheus_client's HTTP
server in its own threads; the database is read through the gateway's one connection.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, get_args

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from gateway.events import HoldAction
from gateway.register import checkpoint
from gateway.register.codec import open_entry
from gateway.register.ledger import Register
from gateway.settings.metrics import MetricsSettings
from gateway.store import Store
from gateway.throttle import LoginThrottle

__all__ = ["CountingThrottle", "Metrics", "refusal_labels"]

log = structlog.get_logger("gateway.metrics")

QUEUE_STATES = ("queued", "held", "unapproved", "corrupt")
UNDECIDED = ("held", "unapproved")  # awaiting a line manager (gateway.queue.states)
OUTCOMES = ("delivered", "deferred", "bounced")
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 432000.0)
_RULE = re.compile(r"[A-Z]+(?:-[A-Z]+)+")  # DISC-TAG, NOTICE-MIME: the rule that refused
_TRACE = re.compile(r"R-[0-9A-F]+")  # R-1A2B: one refusal's own trace code
_REPLY = re.compile(r"([45]\d\d)[ -]([45]\.\d{1,3}\.\d{1,3})(?:\s|$)")
_PHASES = ("mail", "rcpt", "data")
_PAGE = 500  # register entries read per query, so the store's lock is held briefly


def refusal_labels(data: dict[str, Any]) -> tuple[str, str, str, str]:
    """(phase, code, enhanced, reference) of a refused entry: fixed words only."""
    phase = str(data.get("phase", ""))
    found = _REPLY.match(str(data.get("reply", "")))
    code, enhanced = (found[1], found[2]) if found else ("", "")
    ref = str(data.get("reference") or "")
    if not ref:
        reference = "none"
    elif _TRACE.fullmatch(ref):
        reference = "per-refusal"
    elif _RULE.fullmatch(ref) and len(ref) <= 40:
        reference = ref
    else:
        reference = "other"
    return phase if phase in _PHASES else "other", code, enhanced, reference


def _counter(name: str, doc: str, *labels: str) -> Counter:
    return Counter(name, doc, labels, registry=None)


def _gauge(name: str, doc: str) -> Gauge:
    return Gauge(name, doc, registry=None)


class CountingThrottle(LoginThrottle):
    """The listener's login throttle, telling the metrics of every failed login."""

    def __init__(self, *, on_failure: Callable[[], None], **kw: Any) -> None:
        super().__init__(**kw)
        self.on_failure = on_failure

    def failed(self, client: str, account: str) -> None:
        super().failed(client, account)
        self.on_failure()


class _Collector:
    """What one scrape reports; :meth:`collect` runs in the HTTP server's threads."""

    def __init__(self, store: Store, register: Register | None, clock: Callable[[], float]):
        self.store = store
        self.register = register
        self.clock = clock
        self._lock = threading.Lock()
        self._seen = 0
        if register is not None:
            self._seen = store.query("SELECT coalesce(max(seq), 0) AS n FROM register")[0]["n"]
        # Not in any global registry: this collector reports them, after catching up.
        self.accepted = _counter(
            "c4f_gateway_messages_accepted",
            "Messages accepted and queued (origin: staff, or the gateway's own notices)",
            "origin",
        )
        self.refused = _counter(
            "c4f_gateway_messages_refused",
            "Transactions refused, by SMTP phase, reply code and refusal reference",
            "phase",
            "code",
            "enhanced",
            "reference",
        )
        self.outcomes = _counter(
            "c4f_gateway_recipient_outcomes",
            "Recipients per delivery attempt, by outcome",
            "status",
        )
        self.holds = _counter(
            "c4f_gateway_hold_steps",
            "Steps of held messages: held, approved, refused, withdrawn, expired",
            "action",
        )
        self.latency = Histogram(
            "c4f_gateway_delivery_latency_seconds",
            "Seconds from acceptance to the upstream's 250 (one per delivered group)",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.login_failures = _counter("c4f_gateway_login_failures", "Failed SMTP AUTH attempts")
        self.verified = _gauge(
            "c4f_gateway_register_verified",
            "1 if the last register verify found nothing wrong and a checkpoint covers it",
        )
        self.verify_problems = _gauge(
            "c4f_gateway_register_verify_problems", "Problems the last register verify found"
        )
        self.uncheckpointed = _gauge(
            "c4f_gateway_register_uncheckpointed_entries",
            "Entries written after the newest checkpoint, at the last register verify",
        )
        self.verified_at = _gauge(
            "c4f_gateway_register_verify_timestamp_seconds",
            "When the last register verify finished (0: not yet run)",
        )
        for origin in ("staff", "gateway"):
            self.accepted.labels(origin)
        for status in OUTCOMES:
            self.outcomes.labels(status)
        for action in get_args(HoldAction):
            self.holds.labels(action)
        self._metrics = (
            self.accepted,
            self.refused,
            self.outcomes,
            self.holds,
            self.latency,
            self.login_failures,
            self.verified,
            self.verify_problems,
            self.uncheckpointed,
            self.verified_at,
        )

    def collect(self) -> Iterable[Any]:
        with self._lock:
            self._catch_up()
            families = [f for m in self._metrics for f in m.collect()]
            families += self._queue()
            families.append(self._checkpoint())
        return families

    # -- the register, read forward ----------------------------------------------------

    def _catch_up(self) -> None:
        reg = self.register
        if reg is None:
            return
        while True:
            rows = self.store.query(
                "SELECT r.seq, r.kind, r.public, r.sealed, r.entry_key, r.at_us,"
                " a.at_us AS accepted_us FROM register r"
                " LEFT JOIN register a ON r.kind = 'outcome' AND a.seq = r.ref"
                " WHERE r.seq > ? ORDER BY r.seq LIMIT ?",
                (self._seen, _PAGE),
            )
            for row in rows:
                self._count(row, reg)
                self._seen = row["seq"]
            if len(rows) < _PAGE:
                return

    def _count(self, row: Any, reg: Register) -> None:
        kind = row["kind"]
        if kind == "hold":
            action = str(json.loads(row["public"] or "{}").get("hold", ""))
            self.holds.labels(action if action in get_args(HoldAction) else "other").inc()
            return
        if kind not in ("accepted", "refused", "outcome"):
            return
        try:
            data = json.loads(open_entry(reg.keyring, row["seq"], row["sealed"], row["entry_key"]))
        except Exception:  # purged or unreadable: `register verify` reports it, not us
            data = {}
        if kind == "accepted":
            self.accepted.labels("staff" if data.get("staff") else "gateway").inc()
        elif kind == "refused":
            self.refused.labels(*refusal_labels(data)).inc()
        else:
            status = str(data.get("status", ""))
            if status not in OUTCOMES:
                return
            self.outcomes.labels(status).inc(len(data.get("recipients") or ()))
            if status == "delivered" and row["accepted_us"] is not None:
                self.latency.observe(max(row["at_us"] - row["accepted_us"], 0) / 1e6)

    # -- read at scrape time -----------------------------------------------------------

    def _queue(self) -> list[Any]:
        now = self.clock()
        rows = self.store.query(
            "SELECT state, count(*) AS n, min(created) AS oldest FROM queue GROUP BY state"
        )
        found = {r["state"]: (r["n"], max(now - r["oldest"], 0.0)) for r in rows}
        depth = GaugeMetricFamily(
            "c4f_gateway_queue_messages", "Messages in the queue, by state", labels=["state"]
        )
        oldest = GaugeMetricFamily(
            "c4f_gateway_queue_oldest_age_seconds",
            "Age of the oldest message in each state (0: none)",
            labels=["state"],
        )
        for state in sorted(set(QUEUE_STATES) | set(found)):
            n, age = found.get(state, (0, 0.0))
            depth.add_metric([state], n)
            oldest.add_metric([state], age)
        undecided = [found[s] for s in UNDECIDED if s in found]
        held = GaugeMetricFamily(
            "c4f_gateway_held_messages",
            "Messages awaiting a line manager's decision (held, or set aside unapproved)",
            value=sum(n for n, _ in undecided),
        )
        held_age = GaugeMetricFamily(
            "c4f_gateway_held_oldest_age_seconds",
            "Age of the oldest message awaiting a decision (0: none)",
            value=max((age for _, age in undecided), default=0.0),
        )
        return [depth, oldest, held, held_age]

    def _checkpoint(self) -> GaugeMetricFamily:
        newest = 0.0
        if self.register is not None:
            found, _, _ = checkpoint.load(self.register.checkpoint_dir, self.register.mac_key)
            for cp in found:
                newest = max(newest, datetime.fromisoformat(cp.written_at).timestamp())
        return GaugeMetricFamily(
            "c4f_gateway_register_last_checkpoint_timestamp_seconds",
            "When the newest signed register checkpoint was written (0: none)",
            value=newest,
        )


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
        self.collector = _Collector(store, register, clock)
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
