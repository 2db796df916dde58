"""What one scrape of the metrics endpoint reports: counters read forward from the
register's committed entries, queue gauges read at scrape time, the register's integrity;
labels are fixed words only (:func:`refusal_labels`)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, get_args

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from gateway.events import HoldAction
from gateway.queue.states import UNDECIDED_STATES
from gateway.register import checkpoint
from gateway.register.codec import open_entry
from gateway.register.ledger import Register
from gateway.store import Store

QUEUE_STATES = ("queued", "held", "unapproved", "corrupt")


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


class Collector:
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
        undecided = [found[s] for s in UNDECIDED_STATES if s in found]
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
