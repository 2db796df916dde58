"""``[limits] max_connections*`` hold across the workers of ``serve`` (issue 16; LIM-9 in
tests/CATALOGUE.md: LIM-5, LIM-7 and LIM-8 with several processes): the real command
with two workers.

Which worker accepts a connection is the kernel's choice; the tests choose for it by
stopping one worker (SIGSTOP) while they connect, so that the other accepts, and then
the other way round. A stopped worker keeps its connections open.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from support.pki import TestCA
from support.rawsmtp import RawSMTP
from support.subprocess_gateway import GatewayProcess, prepare
from support.workers import Workers, events

pytestmark = pytest.mark.slow


async def logged(gw: GatewayProcess, name: str, count: int) -> list[dict[str, Any]]:
    """The ``name`` events once there are ``count`` of them (within five seconds)."""
    for _ in range(50):
        if len(events(gw, name)) >= count:
            break
        await asyncio.sleep(0.1)
    return events(gw, name)


async def connect(port: int, local: str) -> tuple[RawSMTP, str]:
    """A connection from ``local`` and the server's first reply (220 or 421)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    c = RawSMTP(reader, writer)
    return c, await c.reply()


Serve = Callable[[dict[str, Any]], Awaitable[tuple[GatewayProcess, Workers]]]


@pytest.fixture
async def serve(tmp_path: Path, ca: TestCA) -> AsyncIterator[Serve]:
    """Starts ``serve`` with two workers and the given ``[limits]``; stopped (every worker
    resumed first) at the end."""
    started: list[GatewayProcess] = []

    async def start(limits: dict[str, Any]) -> tuple[GatewayProcess, Workers]:
        config = prepare(tmp_path, ca, config={"server": {"workers": 2}, "limits": limits})
        gw = await GatewayProcess(config).start()
        started.append(gw)
        return gw, Workers(gw)

    yield start
    for gw in started:
        for pid in gw.workers():
            os.kill(pid, signal.SIGCONT)
        assert await gw.stop() == 0


async def test_lim9_the_per_client_limit_counts_every_workers_connections(serve: Serve) -> None:
    gw, workers = await serve(
        {"max_connections": 50, "max_connections_per_client": 3, "max_connections_per_network": 3}
    )
    first, second = workers.pids
    held = []
    await workers.only(first)
    for _ in range(2):
        c, greeting = await connect(gw.port, "127.0.0.2")
        assert greeting.startswith("220 "), greeting
        held.append(c)
    await workers.only(second)
    c, greeting = await connect(gw.port, "127.0.0.2")
    assert greeting.startswith("220 "), greeting  # the third of three
    held.append(c)
    refused, greeting = await connect(gw.port, "127.0.0.2")
    assert greeting.startswith("421 4.7.0 "), greeting  # the fourth, though this worker has one
    assert await refused.closed()
    # The same /24 is full too (max_connections_per_network = 3); another network is not.
    refused, greeting = await connect(gw.port, "127.0.0.3")
    assert greeting.startswith("421 4.7.0 "), greeting
    assert await refused.closed()
    other, greeting = await connect(gw.port, "127.0.1.2")
    assert greeting.startswith("220 "), greeting
    await workers.all()
    for c in [*held, other]:
        assert (await c.cmd("NOOP")).startswith("250")
        await c.close()
    # A closed connection gives its slot back, whichever worker had it.
    again, greeting = await connect(gw.port, "127.0.0.2")
    assert greeting.startswith("220 "), greeting
    await again.close()
    opened = events(gw, "connection_open")
    assert {e["worker"] for e in opened} == {0, 1}
    assert len(events(gw, "connection_refused_limit")) == 2


async def test_lim9_a_newcomer_evicts_the_idlest_connection_of_another_worker(serve: Serve) -> None:
    gw, workers = await serve(
        {"max_connections": 4, "max_connections_per_client": 2, "max_connections_per_network": 2}
    )
    first, second = workers.pids
    await workers.only(first)
    busy, greeting = await connect(gw.port, "127.0.1.2")
    assert greeting.startswith("220 ")
    idlest, greeting = await connect(gw.port, "127.0.2.2")
    assert greeting.startswith("220 ")
    assert (await busy.cmd("NOOP")).startswith("250")
    await workers.only(second)
    late = []
    for local in ("127.0.3.2", "127.0.4.2"):
        c, greeting = await connect(gw.port, local)
        assert greeting.startswith("220 "), greeting
        late.append(c)
    # Four of four: the newcomer takes the slot of the first worker's idlest connection.
    newcomer, greeting = await connect(gw.port, "127.0.5.2")
    assert greeting.startswith("220 "), greeting
    await workers.all()  # the first worker, woken, closes the connection it lost
    evicted = await idlest.reply()
    assert evicted.startswith("421 4.7.0 ") and "idle" in evicted, evicted
    assert await idlest.closed()
    for c in [busy, *late, newcomer]:
        assert (await c.cmd("NOOP")).startswith("250")
    [gone] = await logged(gw, "connection_evicted", 1)
    assert gone["client"] == "127.0.2.2"
    # Still four open: a fifth client evicts again rather than adding a fifth.
    fifth, greeting = await connect(gw.port, "127.0.6.2")
    assert greeting.startswith("220 ")
    assert (await busy.reply()).startswith("421 4.7.0 ")  # now the idlest
    assert await busy.closed()
    assert len(await logged(gw, "connection_evicted", 2)) == 2
    for c in [*late, newcomer, fifth]:
        await c.close()


async def test_lim9_a_dead_workers_connections_give_their_slots_back(serve: Serve) -> None:
    gw, workers = await serve(
        {"max_connections": 50, "max_connections_per_client": 2, "max_connections_per_network": 2}
    )
    first, second = workers.pids
    await workers.only(first)
    held = []
    for _ in range(2):
        c, greeting = await connect(gw.port, "127.0.0.2")
        assert greeting.startswith("220 "), greeting
        held.append(c)
    await workers.only(second)
    refused, greeting = await connect(gw.port, "127.0.0.2")
    assert greeting.startswith("421 4.7.0 "), greeting
    assert await refused.closed()
    os.kill(first, signal.SIGKILL)  # its two connections end with it
    for c in held:
        assert await c.closed()
    [freed] = await logged(gw, "worker_connections_freed", 1)
    assert freed["count"] == 2
    c, greeting = await connect(gw.port, "127.0.0.2")
    assert greeting.startswith("220 "), greeting
    await c.close()
    await workers.all()
