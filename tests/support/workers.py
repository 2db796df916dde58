"""Steering and reading ``serve``'s worker processes in tests.

Which worker accepts a connection is the kernel's choice; :class:`Workers` chooses for
it by stopping the other workers (SIGSTOP) while the test connects. A stopped worker
keeps its connections open and catches up on what the others told it once resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from support.subprocess_gateway import GatewayProcess


def events(gw: GatewayProcess, name: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``name``, from every process of ``serve``."""
    found = []
    for line in gw.output().splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            entry = json.loads(line)
            if entry.get("event") == name:
                found.append(entry)
    return found


class Workers:
    """The two workers of ``gw``, one of which may be stopped while the test connects."""

    def __init__(self, gw: GatewayProcess) -> None:
        self.gw = gw
        self.pids = gw.workers()
        assert len(self.pids) == 2, self.pids
        self.stopped: set[int] = set()

    async def only(self, pid: int) -> None:
        """Let ``pid`` alone accept new connections."""
        for other in self.pids:
            if other == pid:
                os.kill(other, signal.SIGCONT)
                self.stopped.discard(other)
            else:
                os.kill(other, signal.SIGSTOP)
                self.stopped.add(other)
        await self._settled()

    async def all(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):  # killed by the test
                os.kill(pid, signal.SIGCONT)
        self.stopped.clear()
        await self._settled()

    async def _settled(self) -> None:
        """Until each worker is stopped, or running, as the test asked (signals arrive
        when the kernel next schedules the process, not when they are sent)."""
        deadline = time.monotonic() + 5
        while any(stopped(pid) != (pid in self.stopped) for pid in self.pids):
            assert time.monotonic() < deadline, "a worker did not stop or go on"
            await asyncio.sleep(0.005)


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal (state T in /proc); a process gone is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"
