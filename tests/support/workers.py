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
        await asyncio.sleep(0.2)

    async def all(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):  # killed by the test
                os.kill(pid, signal.SIGCONT)
        self.stopped.clear()
        await asyncio.sleep(0.2)
