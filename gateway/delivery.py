"""The delivery worker: claim due messages, hand them to the transport, record outcomes.

Per recipient: 2xx delivered; 4xx (or no connection, no TLS, bad certificate) deferred with
exponential backoff; 5xx, or still deferred past ``max_queue_age``, bounced with a DSN to the
staff sender (RFC 3464). Delivery is at-least-once: a crash after the upstream's 250 and
before our record means one more attempt, and the register shows both (DUR-7).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Literal

import structlog

from gateway.dsn import build_bounce
from gateway.errors import SpoolCorrupt, TempFailure
from gateway.events import Evidence, Outcome
from gateway.settings import Settings
from gateway.spool import Spool, Spooled, new_queue_id
from gateway.transports import AttemptResult, Transport

log = structlog.get_logger("gateway.delivery")


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.delivery = settings.delivery
        self.spool = spool
        self.transport = transport
        self.clock = clock
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            free = self.delivery.concurrency - len(self._inflight)
            if free > 0:
                ids = await self.spool.store.run(self.spool.due, free, set(self._inflight))
                for qid in ids:
                    task = asyncio.create_task(self._attempt_guarded(qid))
                    self._inflight[qid] = task
                    task.add_done_callback(self._done)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.delivery.poll_interval)
            self._wake.clear()

    def _done(self, task: asyncio.Task[None]) -> None:
        for qid, t in list(self._inflight.items()):
            if t is task:
                del self._inflight[qid]
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt_guarded(self, qid: str) -> None:
        try:
            await self.attempt(qid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The message stays queued and is tried again at its next slot.
            log.exception("delivery_crashed", queue_id=qid, error=type(exc).__name__)
            await asyncio.sleep(self.delivery.retry_initial)

    async def attempt(self, qid: str) -> None:
        try:
            msg = await self.spool.store.run(self.spool.load, qid)
        except SpoolCorrupt:
            return  # quarantined and logged by the spool; other mail keeps flowing
        if msg is None or not msg.pending:
            return
        rcpts = [msg.rcpt_tos[i] for i in msg.pending]
        try:
            result = await self.transport.send(msg.mail_from, rcpts, msg.content)
        except TempFailure as t:
            reason = f"{t.enhanced} {t.text}"
            result = AttemptResult({r: (451, reason) for r in rcpts}, reason)
        await self._record(msg, result)

    async def _record(self, msg: Spooled, result: AttemptResult) -> None:
        now = self.clock()
        expired = now - msg.created >= self.delivery.max_queue_age
        delivered: list[int] = []
        bounced: dict[int, str] = {}
        deferred: list[int] = []
        for i in msg.pending:
            code, text = result.replies.get(msg.rcpt_tos[i], (451, result.final_reply))
            if 200 <= code < 300:
                delivered.append(i)
            elif code >= 500:
                bounced[i] = f"{code} {text}"
            elif expired:
                bounced[i] = f"gave up after {self.delivery.max_queue_age / 86400:g} days: "
                bounced[i] += f"{code} {text}"
            else:
                deferred.append(i)
        attempt = msg.attempts + 1
        groups: list[tuple[Literal["delivered", "deferred", "bounced"], list[int]]] = [
            ("delivered", delivered),
            ("deferred", deferred),
            ("bounced", list(bounced)),
        ]
        outcomes = [
            Outcome(
                queue_id=msg.queue_id,
                at=now,
                attempt=attempt,
                status=status,
                recipients=tuple(msg.rcpt_tos[i] for i in idxs),
                reply=result.final_reply,
                evidence=result.evidence,
            )
            for status, idxs in groups
            if idxs
        ]
        retry_at = None
        if deferred:
            backoff = min(self.delivery.retry_initial * 2**msg.attempts, self.delivery.retry_max)
            retry_at = now + backoff
        if bounced and msg.mail_from not in ("", "<>"):
            await self.spool.store.run(self._queue_bounce, msg, bounced)
        await self.spool.store.run(
            lambda: self.spool.finish(
                msg,
                delivered=delivered,
                bounced=list(bounced),
                outcomes=outcomes,
                retry_at=retry_at,
                error=result.final_reply,
            )
        )
        ev = result.evidence
        log.info(
            "delivery_attempt",
            queue_id=msg.queue_id,
            staff=msg.staff,
            attempt=attempt,
            delivered=len(delivered),
            deferred=len(deferred),
            bounced=len(bounced),
            reply=_first_line(result.final_reply),
            upstream=ev.host,
            tls=ev.tls_version,
            cipher=ev.cipher,
            cert_sha256=ev.cert_sha256,
        )

    def _queue_bounce(self, msg: Spooled, bounced: dict[int, str]) -> None:
        dsn = build_bounce(
            hostname=self.settings.hostname,
            queue_id=msg.queue_id,
            original_sender=msg.mail_from,
            failed={msg.rcpt_tos[i]: reply for i, reply in bounced.items()},
            original=msg.content,
            include_body=self.delivery.bounce_includes_body,
            arrival=msg.created,
        )
        qid = new_queue_id()
        self.spool.accept(
            queue_id=qid,
            staff="",
            peer="",
            mail_from="",
            rcpt_tos=[msg.mail_from],
            content=dsn,
            annotations={"bounce_for": msg.queue_id},
        )
        log.info("bounce_queued", queue_id=qid, bounce_for=msg.queue_id, staff=msg.staff)


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else ""


__all__ = ["DeliveryWorker", "Evidence"]
