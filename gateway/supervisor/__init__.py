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
``BEGIN IMMEDIATE`` transaction (SQLite's one writer at a time). Workers tell each other
of every failed and successful login (:class:`gateway.throttle.Peers`, socket pairs made
before the first fork), so the login throttle holds across them, and count their open
connections in one table in shared memory (:mod:`gateway.smtp.slot_table`, made before
the first fork too), so ``[limits] max_connections*`` hold across them; the supervisor
gives a dead worker's rows back.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.errors import ConfigError
from gateway.listening import Listening, bind_listeners, close_all
from gateway.opening import open_parts
from gateway.queue import leases
from gateway.queue import schema as queue_schema
from gateway.schema_version import DatabaseRefused
from gateway.server import Gateway
from gateway.settings import Settings
from gateway.smtp.slot_table import SlotTable, TableBusy
from gateway.store import Store
from gateway.throttle import Peers

log = structlog.get_logger("gateway.supervisor")

SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
STOP_TIMEOUT = 25.0  # below the unit's TimeoutStopSec=30s
LOCK_WAIT = 15.0  # for the workers of a serve that was killed -9 to finish stopping
READY_TIMEOUT = 120.0
RESTART_FIRST = 0.5
RESTART_MAX = 30.0
STABLE = 30.0  # a worker that lived this long restarts after RESTART_FIRST again


def worker_count(settings: Settings) -> int:
    return settings.server.workers or os.cpu_count() or 1


def serve(settings: Settings) -> int:
    """Run ``serve`` until SIGTERM or SIGINT; the exit status."""
    # Everything a worker opens, opened once here first, so that a bad setting stops
    # start-up with its one line before anything is bound or forked.
    store = open_parts(settings).store
    try:
        lock = take_serve_lock(settings.storage.database)
        _clear_leases(store)
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


def serve_lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".serve-lock")


def take_serve_lock(database: Path, wait: float = LOCK_WAIT) -> int:
    """The exclusive lock of one ``serve`` on ``database``, inherited by its workers;
    waits ``wait`` seconds for the workers of a previous one to end."""
    path = serve_lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise DatabaseRefused(
                    f"{database}: another `c4f-gateway serve` is running on this database "
                    f"(its processes hold {path.name}): stop it first"
                ) from None
            if not said:
                log.warning("serve_waiting_for_previous_workers", lock=path.name)
                said = True
            time.sleep(0.1)


def _clear_leases(store: Store) -> None:
    """No process of an earlier ``serve`` is left (we hold the lock): nobody holds a lease."""
    # As the spool does: a new database has no queue yet, an older one no lease table.
    store.ensure(queue_schema.SCHEMA)
    cleared = leases.clear_all(store)
    if cleared:
        log.info("delivery_leases_cleared", count=cleared)


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


@dataclass
class Slot:
    index: int
    pid: int = 0  # 0: not running
    started: float = 0.0
    failures: int = 0  # deaths in a row within STABLE seconds of the start
    restart_at: float | None = None


class Supervisor:
    def __init__(self, settings: Settings, listening: Sequence[Listening], count: int) -> None:
        self.settings = settings
        self.listening = listening
        self.slots = [Slot(i) for i in range(count)]
        # Every worker's inbox for the others' failed and successful logins, made before
        # any worker so that each, and each restarted one, has them all.
        self.inboxes = Peers.pairs(count)
        # The open connections of every worker, counted against [limits] as one.
        self.connections = SlotTable(settings.limits.max_connections, count)
        self.stopping_since: float | None = None
        self.primary_told = False  # the first worker has been sent SIGTERM

    def run(self) -> int:
        # Taken with sigtimedwait below, never by a handler. One is set all the same: as
        # PID 1 of a container, a signal left at its default action would be dropped.
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        for sig in SIGNALS:
            signal.signal(sig, _ignore)
        try:
            self._start_all()
            for item in self.listening:
                announce(item.kind, *item.host_port)
            log.info("supervisor_started", workers=len(self.slots), pid=os.getpid())
            while self._live() or self.stopping_since is None:
                info = signal.sigtimedwait(SIGNALS, self._wait())
                if info is not None:
                    self._on_signal(info.si_signo)
                self._reap()
                self._stop_primary_last()
                self._restart_due()
                self._kill_late()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        log.info("stopped", role="supervisor")
        return 0

    # -- starting ------------------------------------------------------------------------

    def _start_all(self) -> None:
        """Start every worker and wait until each is serving; if one cannot start, stop
        the others and raise its error (``FILE: KEY: REASON`` from the first worker)."""
        pipes = {slot.index: self._fork(slot, report=True) for slot in self.slots}
        reports: dict[int, bytes] = {i: b"" for i in pipes}
        deadline = time.monotonic() + READY_TIMEOUT
        pending = dict(pipes)
        while pending and time.monotonic() < deadline:
            readable, _, _ = select.select(list(pending.values()), [], [], 0.5)
            for index, fd in list(pending.items()):
                if fd in readable:
                    chunk = os.read(fd, 65536)
                    reports[index] += chunk
                    if not chunk or reports[index].startswith(b"R"):
                        os.close(fd)
                        del pending[index]
        for fd in pending.values():
            os.close(fd)
        failed = sorted(i for i, text in reports.items() if not text.startswith(b"R"))
        if not failed:
            return
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTERM)
        for slot in self.slots:
            if slot.pid:
                os.waitpid(slot.pid, 0)
                slot.pid = 0
        text = reports[failed[0]]
        message = text[1:].decode("utf-8", "replace")
        if text.startswith(b"C"):
            raise ConfigError(message)
        if text.startswith(b"D"):
            raise DatabaseRefused(message)
        raise DatabaseRefused(
            f"worker {failed[0]} did not start ({message or 'no reason given'}); see the log"
        )

    def _fork(self, slot: Slot, *, report: bool) -> int:
        """Start the worker of ``slot``; with ``report``, the read end of its pipe."""
        read_fd, write_fd = os.pipe() if report else (-1, -1)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; measured through its behaviour
            if report:
                os.close(read_fd)
            self._child(slot.index, write_fd if report else None)
        slot.pid, slot.started, slot.restart_at = pid, time.monotonic(), None
        log.info("worker_started", worker=slot.index, pid=pid)
        if report:
            os.close(write_fd)
        return read_fd

    def _child(self, index: int, report: int | None) -> None:  # pragma: no cover
        code = 1
        try:
            for sig in (signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)  # until the worker's loop takes them
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            structlog.contextvars.bind_contextvars(worker=index)
            self.connections.worker = index

            def ready() -> None:
                if report is not None:
                    os.write(report, b"R")

            asyncio.run(
                run_worker(
                    self.settings,
                    self.listening,
                    primary=index == 0,
                    ready=ready,
                    parent=os.getppid(),
                    peers=Peers(
                        self.inboxes[index][0],
                        [pair[1] for i, pair in enumerate(self.inboxes) if i != index],
                    ),
                    connections=self.connections,
                )
            )
            code = 0
        except ConfigError as exc:
            _tell(report, b"C", str(exc))
        except DatabaseRefused as exc:
            _tell(report, b"D", str(exc))
        except BaseException as exc:
            log.exception("worker_failed", error=type(exc).__name__)
            _tell(report, b"X", type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    # -- running -------------------------------------------------------------------------

    def _live(self) -> list[Slot]:
        return [s for s in self.slots if s.pid]

    def _wait(self) -> float:
        """Seconds until something is due: a restart, the stop deadline, or a look round."""
        now = time.monotonic()
        due = [s.restart_at - now for s in self.slots if s.restart_at is not None]
        if self.stopping_since is not None:
            due.append(self.stopping_since + STOP_TIMEOUT - now)
        return max(0.01, min([0.5, *due]))

    def _on_signal(self, signo: int) -> None:
        if signo == signal.SIGHUP:
            log.info("supervisor_reload", workers=len(self._live()))
            self._send(signal.SIGHUP)
        elif signo in (signal.SIGTERM, signal.SIGINT) and self.stopping_since is None:
            log.info("supervisor_stopping", workers=len(self._live()))
            self.stopping_since = time.monotonic()
            for slot in self.slots:
                slot.restart_at = None
            self._send(signal.SIGTERM, primary=False)

    def _stop_primary_last(self) -> None:
        """The first worker stops once the others have: its checkpoint at stop then
        covers their last register entries."""
        first = self.slots[0]
        if self.stopping_since is None or not first.pid or self.primary_told:
            return
        if all(not s.pid for s in self.slots[1:]):
            self.primary_told = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(first.pid, signal.SIGTERM)

    def _send(self, signo: int, *, primary: bool = True) -> None:
        for slot in self._live():
            if slot.index == 0 and not primary:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signo)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            slot.pid = 0
            self._free_connections(slot.index)
            how = (
                {"signal": os.WTERMSIG(status)}
                if os.WIFSIGNALED(status)
                else {"status": os.waitstatus_to_exitcode(status)}
            )
            if self.stopping_since is not None:
                log.info("worker_stopped", worker=slot.index, pid=pid, **how)
                continue
            now = time.monotonic()
            slot.failures = 0 if now - slot.started >= STABLE else slot.failures + 1
            delay = min(RESTART_FIRST * 2 ** max(slot.failures - 1, 0), RESTART_MAX)
            slot.restart_at = now + delay
            log.error("worker_died", worker=slot.index, pid=pid, restart_in=delay, **how)

    def _free_connections(self, index: int) -> None:
        """A dead worker's connections are closed: their rows go back to the table."""
        try:
            freed = self.connections.clear_owner(index)
        except TableBusy:
            log.error("connection_table_busy", worker=index)
            return
        if freed:
            log.info("worker_connections_freed", worker=index, count=freed)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now and not slot.pid:
                self._fork(slot, report=False)

    def _kill_late(self) -> None:
        if self.stopping_since is None:
            return
        if time.monotonic() - self.stopping_since >= STOP_TIMEOUT:
            for slot in self._live():
                log.error("worker_killed_at_stop", worker=slot.index, pid=slot.pid)
            self._send(signal.SIGKILL)


def _ignore(signo: int, frame: object) -> None:
    """The supervisor's handler, never run: its signals are blocked and waited for."""


def _tell(fd: int | None, kind: bytes, text: str) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, kind + text.encode("utf-8", "replace"))
