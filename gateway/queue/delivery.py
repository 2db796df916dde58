"""The delivery worker: claim due messages, hand them to the transport, record outcomes.

A message this process accepts (:meth:`DeliveryWorker.accept`) is not claimed: when a
slot is free, its acceptance takes the lease and the message is delivered from memory.

Per recipient: 2xx delivered; 4xx (or no connection, no TLS, bad certificate) deferred with
exponential backoff; 5xx, or still deferred past ``max_queue_age``, bounced with a DSN to the
staff sender (RFC 3464); :mod:`gateway.queue.verdicts` judges, this module records.
Delivery is at-least-once: a crash after the upstream's 250 and before our record means
one more attempt, and the register shows both (DUR-7).

When the record itself cannot be written (the disk is full: DUR-10), the transfer has
happened all the same. Its outcome is kept in memory and the message is never offered
upstream again; delivery pauses (``paused``, ``delivery_paused`` in the log) and the kept
outcomes are written, oldest first, at every poll until the store takes them, after which
delivery resumes. Only a restart while paused reopens the DUR-7 window for those messages.

Several workers (one per ``serve`` process, :mod:`gateway.supervisor`) share the queue:
each takes messages with a lease (:mod:`gateway.queue.leases`), renews it every third of
``[delivery] lease`` while the delivery runs, and the outcome's transaction clears it.
A kept outcome (DUR-10) keeps its lease while the store refuses writes; if the store
refuses even the renewal past the lease, another worker may send that message once more
(the DUR-7 window, logged as ``delivery_lease_lost``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable

import structlog

from gateway.errors import SpoolCorrupt, TempFailure
from gateway.events import Accepted, Evidence
from gateway.queue import leases
from gateway.queue.bodies import IN_FILE_OVER
from gateway.queue.dsn import build_bounce
from gateway.queue.spool import Message, Spool, Spooled, new_queue_id
from gateway.queue.transports import AttemptResult, Transport, not_sent
from gateway.queue.verdicts import Verdicts, judge, outcomes, retry_at, with_status
from gateway.settings import Settings

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
        # Outcomes the upstream gave that the store could not take yet (DUR-10), in the
        # order they happened: each a write that is retried until it commits.
        self._unrecorded: dict[str, Callable[[], Awaitable[None]]] = {}
        self._stopping = False
        self.owner = leases.new_owner()  # whose leases are ours (gateway.queue.leases)
        self._reserved = 0  # leases given for acceptances in progress (reserve, hand)
        # Due messages may be waiting for a slot: poll again as soon as a delivery ends.
        self._behind = False
        self._renewing: asyncio.Task[None] | None = None

    @property
    def paused(self) -> bool:
        """True while an outcome waits to be recorded: nothing new is sent meanwhile."""
        return bool(self._unrecorded)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        self._renewing = asyncio.create_task(self._renew_leases())
        while not self._stopping:
            if self._unrecorded:
                await self._record_kept()
            free = self.delivery.concurrency - len(self._inflight) - self._reserved
            if free > 0 and not self.paused:
                self._behind = False
                ids = await self.spool.store.run(
                    leases.claim,
                    self.spool.store,
                    self.owner,
                    free,
                    self.clock(),
                    self.delivery.lease,
                    set(self._unrecorded),  # their lease may have run out: still ours
                )
                if self._stopping:  # stop() came while we claimed: give them back
                    await self.spool.store.run(leases.release, self.spool.store, self.owner, ids)
                    break
                if len(ids) >= free:  # as many as it could take: there may be more
                    self._behind = True
                for qid in ids:
                    self._start(qid, None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.delivery.poll_interval)
            self._wake.clear()

    async def accept(self, message: Message) -> Accepted:
        """Accept ``message`` into the queue (:meth:`Spool.accept_async`) for delivery.

        A message up to IN_FILE_OVER, when a delivery slot is free, is leased to this
        worker in its acceptance's own transaction and delivered from memory as soon as
        the commit ends (no claim, no reading it back), even if the caller stopped
        waiting for it (the client went away): committed with our lease and never
        handed over, it would wait for the lease to expire. Any other message is for a
        poll to find, and one is asked for now."""
        lease = self._reserve() if len(message["content"]) <= IN_FILE_OVER else None
        if lease is None:
            accepted = await self.spool.accept_async(**message)
            self.wake()
            return accepted
        message["lease"] = lease
        accepting = asyncio.ensure_future(self.spool.accept_async(**message))
        accepting.add_done_callback(functools.partial(self._hand, message))
        return await asyncio.shield(accepting)

    def _reserve(self) -> tuple[str, float] | None:
        """A lease (owner, until) if this worker runs and has a slot free; else None (and,
        every slot busy, the next delivery to end polls for what waits)."""
        running = self._renewing is not None and not self._stopping  # run() is on
        if not running or self.paused:
            return None
        if len(self._inflight) + self._reserved >= self.delivery.concurrency:
            self._behind = True
            return None
        self._reserved += 1
        return self.owner, self.clock() + self.delivery.lease

    def _hand(self, message: Message, accepting: asyncio.Future[Accepted]) -> None:
        """The acceptance that took a :meth:`_reserve` lease has ended: deliver the
        message now, unless it was not accepted (nothing was leased) or this worker is
        stopping (its lease expires, and another worker or the next start sends it)."""
        self._reserved -= 1
        if accepting.cancelled() or accepting.exception() is not None or self._stopping:
            return
        msg = Spool.in_memory(message, accepting.result())
        self._start(msg.queue_id, msg)

    def _start(self, qid: str, msg: Spooled | None) -> None:
        task = asyncio.create_task(self._attempt_guarded(qid, msg))
        self._inflight[qid] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        for qid, t in list(self._inflight.items()):
            if t is task:
                del self._inflight[qid]
        # A slot is free: poll now if something may be waiting for one; else the next
        # regular poll (a message accepted here with a slot free never waits for one).
        if self._behind or self._unrecorded:
            self._wake.set()

    async def _renew_leases(self) -> None:
        """Every third of the lease: extend the leases of the deliveries in progress."""
        while True:
            await asyncio.sleep(self.delivery.lease / 3)
            held = set(self._inflight) | set(self._unrecorded)
            until = self.clock() + self.delivery.lease
            try:
                lost = await self.spool.store.run(
                    leases.renew, self.spool.store, self.owner, held, until
                )
            except Exception as exc:  # the disk is full (DUR-10): try again next time
                log.warning("delivery_lease_not_renewed", error=type(exc).__name__)
                continue
            for qid in sorted(lost & set(self._inflight)):
                # Our lease ran out (this process was stalled) and another worker took
                # the message, or it was deleted: at least once, never lost (DUR-7).
                log.warning("delivery_lease_lost", queue_id=qid)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._renewing is not None:
            self._renewing.cancel()
        tasks = list(self._inflight.values())
        ids = list(self._inflight)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:  # what was in progress may go at once to another worker, or the next start
            await self.spool.store.run(leases.release, self.spool.store, self.owner, ids)
        except Exception as exc:  # they wait for their lease to expire instead
            log.warning("delivery_leases_kept_at_stop", error=type(exc).__name__)
        if self._unrecorded:
            await self._record_kept()
        if self._unrecorded:
            # Lost with this process: these will be offered upstream once more (DUR-7).
            log.error("delivery_unrecorded_at_stop", queue_ids=sorted(self._unrecorded))

    async def _record_kept(self) -> None:
        """Write the kept outcomes, oldest first; stop at the first the store refuses."""
        for qid, write in list(self._unrecorded.items()):
            try:
                await write()
            except Exception as exc:
                log.debug("delivery_still_unrecorded", queue_id=qid, error=type(exc).__name__)
                return
            del self._unrecorded[qid]
            log.info("delivery_recorded_late", queue_id=qid)
        log.warning("delivery_resumed")

    def _keep(self, qid: str, write: Callable[[], Awaitable[None]], exc: Exception) -> None:
        """The upstream has answered but the store refused our record: keep it, pause."""
        if not self._unrecorded:
            log.error(
                "delivery_paused",
                queue_id=qid,
                error=type(exc).__name__,
                reason=str(exc)[:200],
                detail="the store cannot record what the upstream answered; nothing is sent"
                " until it can",
            )
        self._unrecorded[qid] = write

    async def _attempt_guarded(self, qid: str, msg: Spooled | None = None) -> None:
        try:
            recorded = await self.attempt(qid, msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The message stays queued and is tried again at its next slot.
            log.exception("delivery_crashed", queue_id=qid, error=type(exc).__name__)
            await asyncio.sleep(self.delivery.retry_initial)
            recorded = False
        if not recorded:  # nothing cleared its lease: give it back
            with contextlib.suppress(Exception):  # else it expires
                await self.spool.store.run(leases.release, self.spool.store, self.owner, [qid])

    async def attempt(self, qid: str, msg: Spooled | None = None) -> bool:
        """Deliver one leased message (read from the queue, unless it is given: just
        accepted, :meth:`hand`); True once its outcome is recorded (which ends the lease)
        or kept to be recorded (which keeps it), False if nothing was sent."""
        if msg is None:
            try:
                msg = await self.spool.store.run(self.spool.load, qid)
            except SpoolCorrupt:
                return False  # quarantined and logged by the spool; other mail keeps flowing
        if msg is None or not msg.pending:
            return False
        rcpts = [msg.rcpt_tos[i] for i in msg.pending]
        try:
            result = await self.transport.send(msg.mail_from, rcpts, msg.content, clean=msg.clean)
        except TempFailure as t:
            result = not_sent(rcpts, f"{t.enhanced} {t.text}")
        except Exception as exc:
            # A fault we did not foresee: the message waits like any deferral (backoff,
            # then a bounce at max_queue_age) rather than being retried in a tight loop.
            log.exception("transport_failed", queue_id=qid, error=type(exc).__name__)
            result = not_sent(rcpts, f"4.3.0 delivery failed ({type(exc).__name__}); see the log")
        await self._record(msg, result)
        return True

    async def _record(self, msg: Spooled, result: AttemptResult) -> None:
        now = self.clock()
        verdicts, failed = judge(msg, result, now, self.delivery.max_queue_age)
        if failed and msg.mail_from not in ("", "<>"):  # RFC 5321 4.5.5: no DSN of a DSN
            try:
                # The DSN is queued in the attempt's own transaction: it exists if and only
                # if the failure is recorded, so a crash can neither lose nor repeat it.
                bounce = (new_queue_id(), self._bounce(msg, failed))
                await self._write(msg, result, now, verdicts, bounce)()
                self._log(msg, result, verdicts, bounce[0])
                return
            except Exception as exc:
                # The notice must not be lost, nor the delivered recipients sent twice:
                # record the attempt without it; those that failed stay queued and are
                # judged again at the next try.
                log.exception("bounce_not_queued", queue_id=msg.queue_id, error=type(exc).__name__)
                verdicts.update({i: ("deferred", verdicts[i][1]) for i in failed})
        write = self._write(msg, result, now, verdicts, None)
        try:
            await write()
        except Exception as exc:
            # Rolled back whole, so writing it again later is safe (the register's chain
            # head is read inside the transaction).
            self._keep(msg.queue_id, write, exc)
        self._log(msg, result, verdicts, None)

    def _write(
        self,
        msg: Spooled,
        result: AttemptResult,
        now: float,
        verdicts: Verdicts,
        bounce: tuple[str, bytes] | None,
    ) -> Callable[[], Awaitable[None]]:
        """The one transaction that records this attempt (and queues its DSN, if any)."""

        def queue_bounce(conn: sqlite3.Connection) -> None:
            if bounce is not None:
                self.spool.insert(
                    conn,
                    queue_id=bounce[0],
                    staff="",
                    peer="",
                    mail_from="",
                    rcpt_tos=[msg.mail_from],
                    content=bounce[1],
                    annotations={"bounce_for": msg.queue_id},
                )

        return functools.partial(
            self.spool.finish_async,
            msg,
            delivered=with_status(verdicts, "delivered"),
            bounced=with_status(verdicts, "bounced"),
            outcomes=outcomes(msg, result, now, verdicts),
            retry_at=retry_at(msg, now, verdicts, self.delivery),
            error=result.final_reply,
            also=queue_bounce,
        )

    def _log(
        self,
        msg: Spooled,
        result: AttemptResult,
        verdicts: Verdicts,
        bounce_id: str | None,
    ) -> None:
        if bounce_id is not None:
            log.info("bounce_queued", queue_id=bounce_id, bounce_for=msg.queue_id, staff=msg.staff)
        count = collections.Counter(status for status, _ in verdicts.values())
        ev = result.evidence
        log.info(
            "delivery_attempt",
            queue_id=msg.queue_id,
            staff=msg.staff,
            attempt=msg.attempts + 1,
            delivered=count["delivered"],
            deferred=count["deferred"],
            bounced=count["bounced"],
            reply=_first_line(result.final_reply),
            upstream=ev.host,
            tls=ev.tls_version,
            cipher=ev.cipher,
            cert_sha256=ev.cert_sha256,
        )

    def _bounce(self, msg: Spooled, failed: dict[int, tuple[str, str]]) -> bytes:
        return build_bounce(
            hostname=self.settings.hostname,
            sender=self.settings.notices_from,
            queue_id=msg.queue_id,
            original_sender=msg.mail_from,
            failed={msg.rcpt_tos[i]: verdict for i, verdict in failed.items()},
            original=msg.content,
            include_body=self.delivery.bounce_includes_body,
            arrival=msg.created,
        )


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else ""


__all__ = ["DeliveryWorker", "Evidence"]
