"""One worker process of ``serve``: a whole gateway on the inherited sockets, until
SIGTERM or until its supervisor is gone."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable, Sequence

import structlog

from gateway.listening import Listening
from gateway.server import Gateway
from gateway.settings import Settings
from gateway.smtp.slot_table import SlotTable
from gateway.throttle import Peers

log = structlog.get_logger("gateway.supervisor")


def announce(kind: str, host: str, port: int) -> None:
    """The line tests, scripts and the deploy guide wait for."""
    print(f"c4f-gateway: listening ({kind}) on {host}:{port}", flush=True)


async def run_worker(
    settings: Settings,
    listening: Sequence[Listening],
    *,
    primary: bool,
    single: bool = False,
    ready: Callable[[], None] = lambda: None,
    parent: int | None = None,
    peers: Peers | None = None,
    connections: SlotTable | None = None,
) -> None:
    """One gateway on the bound sockets until SIGTERM (or SIGINT when ``single``), or
    until its supervisor ``parent`` is gone; ``peers``: the other workers' inboxes;
    ``connections``: the connection table the workers share."""
    gateway = Gateway(settings, primary=primary, peers=peers, connections=connections)
    await gateway.start(listening=listening)
    # What start-up built lives as long as the worker: out of the collector's way, so
    # every full collection does not walk it again.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT) if single else (signal.SIGTERM,):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_tls)  # certificate renewal
    for b in gateway.bound:
        if single or b.kind == "metrics":  # the supervisor announces the shared ones
            announce(b.kind, b.host, b.port)
    ready()
    orphaned = None if parent is None else asyncio.create_task(_watch_parent(parent, stop))
    await stop.wait()
    if orphaned is not None:
        orphaned.cancel()
    await gateway.stop()


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    # Nothing to wait on but the parent's ID changing: a look every half second.
    while os.getppid() == parent:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    log.warning("worker_orphaned", detail="the supervisor is gone; stopping")
    stop.set()
