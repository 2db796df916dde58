"""The banner on every page: the result of the last ``register verify``.

The console runs the same check as ``c4f-gateway register verify`` when it starts,
every ``verify_interval`` seconds after that, and when a reviewer asks ("Verify now").
The check walks the whole chain, so it runs in a worker thread and pages show the
last finished result rather than waiting for a new one. While one runs, :attr:`running`
says how far it got (entries checked of the total), for the "Verify now" page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from gateway.register.ledger import Register

log = structlog.get_logger("gateway.web")


@dataclass(frozen=True)
class VerifyStatus:
    at: float  # when the check finished (0: not yet run)
    ok: bool
    count: int
    first_problem: str  # the first broken entry or checkpoint, in the CLI's words
    problems: int
    # What an intact chain cannot prove (REG-11/12): no checkpoint at all, or entries
    # written since the newest one. A cut-off tail would go unseen in either.
    checkpointed: bool = True
    uncheckpointed: int = 0

    @property
    def known(self) -> bool:
        return self.at > 0


NOT_YET = VerifyStatus(0.0, False, 0, "", 0)


@dataclass(frozen=True)
class VerifyProgress:
    """A check under way: entries checked so far of the register's entries (0 of 0: it
    has only just started)."""

    started: float
    done: int = 0
    total: int = 0

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0


class VerifyMonitor:
    def __init__(
        self, register: Register, interval: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.register = register
        self.interval = interval
        self.clock = clock
        self.status = NOT_YET
        self.running: VerifyProgress | None = None  # set while a check runs
        self._running: asyncio.Task[VerifyStatus] | None = None

    def _check(self, started: float) -> VerifyStatus:
        def progress(done: int, total: int) -> None:
            # From the worker thread: one reference replaced whole, read by the pages.
            self.running = VerifyProgress(started, done, total)

        result = self.register.verify(progress=progress)
        first = result.first
        return VerifyStatus(
            at=self.clock(),
            ok=result.ok,
            count=result.count,
            first_problem=first.text if first is not None else "",
            problems=len(result.problems),
            checkpointed=result.proven,
            uncheckpointed=result.uncheckpointed,
        )

    def start(self) -> asyncio.Task[VerifyStatus]:
        """Start the check in the background, unless one is running already."""
        if self._running is None or self._running.done():
            self.running = VerifyProgress(self.clock())
            self._running = asyncio.create_task(self._run(self.running.started))
        return self._running

    async def run_now(self) -> VerifyStatus:
        """Run the check (or join the one already running) and keep its result."""
        return await self.start()

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the running check; True once none runs."""
        task = self._running
        if task is None or task.done():
            return True
        done, _ = await asyncio.wait({task}, timeout=seconds)  # never cancels the check
        return bool(done)

    async def _run(self, started: float) -> VerifyStatus:
        try:
            status = await asyncio.to_thread(self._check, started)
        except Exception as exc:  # a check that cannot run is shown red, never green
            status = VerifyStatus(
                self.clock(), False, 0, f"the check could not run ({type(exc).__name__})", 1
            )
            log.exception("register_verify_error", error=type(exc).__name__)
        finally:
            self.running = None
        self.status = status
        if status.ok:
            log.info("register_verified", entries=status.count)
        else:
            log.error("register_verify_failed", entries=status.count, problems=status.problems)
        return status

    def due(self) -> bool:
        return self.clock() - self.status.at >= self.interval

    async def every_interval(self) -> None:
        """The periodic check, for the console's lifespan (cancelled at shutdown)."""
        while True:
            if self.due():
                await self.run_now()  # a check that cannot run ends red (see _run)
            await asyncio.sleep(min(self.interval, 60.0))
