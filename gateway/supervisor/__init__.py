"""``serve`` on every core: worker processes sharing the listeners, under one supervisor.

The supervisor binds the ``[listen]`` sockets once (:mod:`gateway.listening`), then forks
``[server] workers`` processes (0: one per CPU). Each worker is a whole
:class:`gateway.server.Gateway` on the inherited sockets: the kernel hands each new
connection to one of them, and each delivers the queue, taking messages with a lease
(:mod:`gateway.queue.leases`) so that no two send the same one. Only the first worker
(``primary``) runs the periodic jobs (held-message expiry, escalation and reminders,
register checkpoints and purges, the MX sweep), the metrics endpoint and the checkpoint
at stop, so each job runs in exactly one place; the register's chain stays one line
whichever worker appends, because an append reads the last entry inside its own
``BEGIN IMMEDIATE`` transaction (SQLite's one writer at a time). Workers count their open
connections in one table in shared memory (:mod:`gateway.smtp.slot_table`), so
``[limits] max_connections*`` hold across them, and tell each other through one inbox
each (:class:`gateway.throttle.Peers`) of every failed and successful login, so the
login throttle holds across them, and of a connection's slot one took from another;
both are made before the first fork, and the supervisor gives a dead worker's rows back.

The supervisor does nothing else: it restarts a worker that dies (after 0.5 s, doubling
up to 30 s while it keeps dying within 30 s of its start), forwards SIGHUP (the
certificate reload) to every worker, and on SIGTERM or SIGINT forwards SIGTERM (to the
first worker last, so that its checkpoint covers the others' last entries), waits up to
25 s for the workers to finish, then exits 0. A worker whose supervisor is gone (kill
-9) stops by itself within half a second.

``serve`` holds an exclusive lock on ``DATABASE.serve-lock`` (the workers inherit it) for
as long as any of its processes lives, so a second ``serve`` on the same database is
refused, and a new one starts only once every worker of the last one has ended; it then
clears every delivery lease (nobody can be holding one). With ``workers = 1`` the one
process is the gateway itself, without a supervisor.

Here: :func:`serve`. The supervisor's process is in ``processes``, a worker's life in
``worker``, the lock and the leases' clearing in ``serve_lock``.
"""

from __future__ import annotations

import asyncio
import os

from gateway.listening import bind_listeners, close_all
from gateway.opening import open_parts
from gateway.settings import Settings
from gateway.supervisor.processes import Supervisor
from gateway.supervisor.serve_lock import clear_leases, sweep_bodies, take_serve_lock
from gateway.supervisor.worker import run_worker

__all__ = ["serve", "worker_count"]


def worker_count(settings: Settings) -> int:
    return settings.server.workers or os.cpu_count() or 1


def serve(settings: Settings) -> int:
    """Run ``serve`` until SIGTERM or SIGINT; the exit status."""
    # Everything a worker opens, opened once here first, so that a bad setting stops
    # start-up with its one line before anything is bound or forked.
    store = open_parts(settings).store
    try:
        lock = take_serve_lock(settings.storage.database)
        clear_leases(store)
        sweep_bodies(store)
    finally:
        store.close()
    try:
        listening = bind_listeners(settings)
        try:
            count = worker_count(settings)
            if count == 1:
                asyncio.run(run_worker(settings, listening, primary=True, single=True))
                return 0
            return Supervisor(settings, listening, count).run()
        finally:
            close_all(listening)
    finally:
        os.close(lock)
