"""The supervisor: forks the workers, restarts one that dies, passes signals on, and stops
them all (the first last) on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from gateway.errors import ConfigError
from gateway.listening import Listening
from gateway.schema_version import DatabaseRefused
from gateway.settings import Settings
from gateway.smtp.slot_table import SlotTable, TableBusy
from gateway.supervisor.worker import announce, run_worker
from gateway.throttle import Peers

log = structlog.get_logger("gateway.supervisor")

SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
STOP_TIMEOUT = 25.0  # below the unit's TimeoutStopSec=30s
READY_TIMEOUT = 120.0
RESTART_FIRST = 0.5
RESTART_MAX = 30.0
STABLE = 30.0  # a worker that lived this long restarts after RESTART_FIRST again


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
        # Every worker's inbox for the others' failed and successful logins and evictions,
        # made before any worker so that each, and each restarted one, has them all.
        self.inboxes = Peers.pairs(count)
        # The open connections of every worker, counted against [limits] as one.
        self.connections = SlotTable(settings.limits.max_connections)
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
                    peers=Peers(self.inboxes, index),
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
