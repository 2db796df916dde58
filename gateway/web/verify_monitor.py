"""The banner on every page: the result of the last ``register verify``.

The console runs the same check as ``c4f-gateway register verify`` when it starts,
every ``verify_interval`` seconds after that, and when a reviewer asks ("Verify now").
The check walks the whole chain, so it runs in a worker thread and pages show the
last finished result rather than waiting for a new one.
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


class VerifyMonitor:
    def __init__(
        self, register: Register, interval: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.register = register
        self.interval = interval
        self.clock = clock
        self.status = NOT_YET
        self._running: asyncio.Task[VerifyStatus] | None = None

    def _check(self) -> VerifyStatus:
        result = self.register.verify()
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

    async def run_now(self) -> VerifyStatus:
        """Run the check (or join the one already running) and keep its result."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run())
        return await self._running

    async def _run(self) -> VerifyStatus:
        status = await asyncio.to_thread(self._check)
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
            try:
                if self.due():
                    await self.run_now()
            except Exception as exc:  # a check that cannot run is shown red, never green
                self.status = VerifyStatus(
                    self.clock(), False, 0, f"the check could not run ({type(exc).__name__})", 1
                )
                log.exception("register_verify_error", error=type(exc).__name__)
            await asyncio.sleep(min(self.interval, 60.0))
