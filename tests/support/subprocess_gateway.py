"""The real ``c4f-gateway serve`` in a child process, for crash tests (kill -9).

``prepare()`` writes a config (the harness's defaults, port 0) and a staff account into a
folder; :class:`GatewayProcess` starts ``c4f-gateway serve --config`` on it, reads the bound
ports from the lines ``serve`` prints ("c4f-gateway: listening (KIND) on HOST:PORT"), and can
SIGKILL and restart it. :func:`soak` is the DUR-2 kill -9 soak that both
``tests/queue/test_durability_soak.py`` (small) and ``bench/soak_kill9.py`` (full size) run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.directory.passwords import hash_password
from gateway.directory.staff import StaffDirectory
from gateway.settings import load
from gateway.store import Store
from support.harness import PASSWORD, base_config, merge, write_config
from support.pki import TestCA
from support.upstream import Arrived, Upstream

# Gateways still running when Python exits (a test failed before stopping its own) are
# killed then, so no stray server outlives the test run.
_RUNNING: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for pid in _RUNNING:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


_LISTENING = re.compile(r"^c4f-gateway: listening \((\w+)\) on (\S+):(\d+)$", re.MULTILINE)
# Cheap scrypt cost for test accounts (stored in the hash; the code path is the same).
_TEST_HASH = hash_password(PASSWORD, n=2**10)


def gateway_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m gateway``."""
    script = Path(sys.executable).parent / "c4f-gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def run_cli(
    *args: str | Path, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``c4f-gateway ARGS...`` as a user would; never raises on a non-zero exit."""
    return subprocess.run(
        [*gateway_command(), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def prepare(
    folder: Path,
    ca: TestCA,
    *,
    upstream_port: int | None = None,
    config: dict[str, Any] | None = None,
    staff: tuple[str, ...] = ("alice@c4f.example",),
) -> Path:
    """Write ``folder/gateway.toml`` and the staff accounts; returns the config path.

    Safe to call again on the same folder (for example to point at another upstream port).
    """
    folder.mkdir(parents=True, exist_ok=True)
    cfg = merge(base_config(folder, ca, upstream_port), config or {})
    path = write_config(folder / "gateway.toml", cfg)
    settings = load(path)
    store = Store(settings.storage.database)
    try:
        StaffDirectory(store)  # creates the table
        with store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO staff (login, password_hash, created) VALUES (?, ?, 0)",
                [(login, _TEST_HASH) for login in staff],
            )
    finally:
        store.close()
    return path


class GatewayProcess:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.settings = load(config)
        self.log = config.with_name("gateway.log")
        self.proc: asyncio.subprocess.Process | None = None
        self.ports: dict[str, int] = {}

    @property
    def port(self) -> int:
        return self.ports["starttls"]

    async def start(self, timeout: float = 30.0) -> GatewayProcess:
        """Start ``serve`` and wait until every listener has printed its port."""
        self.settings = load(self.config)
        expected = len(self.settings.listen.starttls) + len(self.settings.listen.implicit_tls)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *gateway_command(),
                "serve",
                "--config",
                str(self.config),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.config.parent,
            )
        _RUNNING.add(self.proc.pid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self.log.open("rb") as f:
                f.seek(offset)
                found = _LISTENING.findall(f.read().decode("utf-8", "replace"))
            if len(found) >= expected:
                self.ports = {kind: int(port) for kind, _host, port in found}
                return self
            if self.proc.returncode is not None or loop.time() > deadline:
                await self.kill()
                raise RuntimeError(f"c4f-gateway serve did not start:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no handler runs, no buffer is flushed (the crash under test)."""
        if self.proc is not None:
            if self.proc.returncode is None:
                self.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.proc.wait(), 10)
            _RUNNING.discard(self.proc.pid)

    def workers(self) -> list[int]:
        """The process IDs of serve's workers ([server] workers > 1), from /proc."""
        assert self.proc is not None
        pid = self.proc.pid
        with contextlib.suppress(OSError):
            return sorted(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))
        return []

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets open but does nothing (until killed)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    async def stop(self) -> int:
        """SIGTERM, as systemd stops the service; returns the exit status."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 20)
        _RUNNING.discard(self.proc.pid)
        return code

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def queue_states(self) -> list[str]:
        """The state of every row in the spool, read from the SQLite file (read-only)."""
        return [r[0] for r in self.sql("SELECT state FROM queue ORDER BY created")]

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        db = self.settings.storage.database
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return list(conn.execute(query))
        finally:
            conn.close()


def client_tls(ca: TestCA) -> ssl.SSLContext:
    """What a staff mail client uses: verifies the gateway against the test CA."""
    return ssl.create_default_context(cafile=str(ca.ca_file))


async def connect(
    port: int, ca: TestCA, login: str | None = "alice@c4f.example", timeout: float = 10
) -> aiosmtplib.SMTP:
    """A staff client: STARTTLS (verifying the gateway against the test CA), then AUTH."""
    client = aiosmtplib.SMTP(
        hostname="localhost",
        port=port,
        start_tls=True,
        tls_context=client_tls(ca),
        timeout=timeout,
    )
    await client.connect()
    if login:
        await client.login(login, PASSWORD)
    return client


def free_port() -> int:
    """A loopback port nobody listens on (for an upstream that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- DUR-2: the kill -9 soak ------------------------------------------------------------

SOAK_SENDER = "alice@c4f.example"
SOAK_RCPT = "bob@c4f.example"
DELIVERY_CONCURRENCY = 4
_TOKEN = re.compile(rb"^Message-ID: <([0-9a-f]+)@soak\.test>\r$", re.MULTILINE)
_LOGGED = re.compile(r"soak ([0-9a-f]{16})|([0-9a-f]{16}) line")
_RECEIVED = re.compile(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")
# What may be left in the gateway's folder once it has stopped: anything else is an orphan.
_EXPECTED_FILES = {
    "gateway.toml",
    "gateway.log",
    "gateway.db",
    "gateway.db-wal",
    "gateway.db-shm",
    "gateway.db.lock",  # held shared by every process that has the database open
    "gateway.db.serve-lock",  # held by serve and its workers (gateway.supervisor)
    "gateway.db.write-lock",  # writers take turns on it (gateway.store_lock)
}


def soak_message(token: str, *, spoofed: bool, large: bool = False) -> bytes:
    """Unique bytes with dot lines (transparency) and a body whose length varies.

    A spoofed From: is refused at DATA (SPF-1), so the soak has refusals to check too.
    A large one (about 100 KB) is kept in a body file of its own (gateway.queue.bodies).
    """
    sender = "ceo@elsewhere.example" if spoofed else SOAK_SENDER
    lines = 5 + len(token) + (2000 if large else 0)
    body = [".", "..x", *(f"{token} line {i} " + "x" * (i * 7 % 70) for i in range(lines))]
    head = (
        f"From: {sender}\r\nTo: {SOAK_RCPT}\r\nSubject: soak {token}\r\n"
        f"Message-ID: <{token}@soak.test>\r\n\r\n"
    )
    return (head + "\r\n".join(body) + "\r\n").encode()


@dataclass
class SoakResult:
    sent: dict[str, bytes] = field(default_factory=dict)  # token -> the bytes submitted
    accepted: set[str] = field(default_factory=set)  # answered 250
    refused: dict[str, int] = field(default_factory=dict)  # answered 4xx/5xx: token -> code
    unknown: set[str] = field(default_factory=set)  # no reply: in flight at a kill
    arrived: Counter[str] = field(default_factory=Counter)  # token -> copies at the upstream
    damaged: list[str] = field(default_factory=list)  # arrived, but not byte-identical
    left_in_queue: list[str] = field(default_factory=list)  # states of rows still spooled
    stray_files: list[str] = field(default_factory=list)
    logged_content: list[str] = field(default_factory=list)
    kills: int = 0
    worker_kills: int = 0  # of those, single workers (the others: the whole of serve)
    workers: int = 1
    register: str = ""  # `register verify` at the end, when it failed
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.arrived.values() if n > 1)

    def problems(self) -> list[str]:
        """The DUR-2 invariants that do not hold (an empty list is a pass)."""
        out = []
        lost = sorted(self.accepted - set(self.arrived))
        if lost:
            out.append(f"{len(lost)} message(s) answered 250 never arrived, e.g. {lost[:3]}")
        if self.damaged:
            out.append(f"{len(self.damaged)} message(s) arrived altered: {self.damaged[:3]}")
        leaked = sorted(set(self.refused) & set(self.arrived))
        if leaked:
            out.append(f"{len(leaked)} refused message(s) were delivered: {leaked[:3]}")
        # A copy is sent twice only when a kill hits between the upstream's 250 and our
        # record: at most one per delivery in flight per kill (DUR-7, at-least-once), in
        # every worker when the supervisor is killed (its workers stop with it).
        if self.duplicates > self.kills * DELIVERY_CONCURRENCY * self.workers:
            out.append(f"{self.duplicates} duplicates for {self.kills} kills")
        if self.left_in_queue:
            out.append(f"the queue did not drain: {Counter(self.left_in_queue)}")
        if self.stray_files:
            out.append(f"orphan files: {self.stray_files}")
        if self.logged_content:
            out.append(f"message content in the log: {self.logged_content[:3]}")
        if self.register:
            out.append(f"the register does not verify: {self.register}")
        return out

    def summary(self) -> str:
        return (
            f"{len(self.accepted)} accepted, {len(self.refused)} refused, "
            f"{len(self.unknown)} cut off by a kill ({len(self.unknown & set(self.arrived))} "
            f"of those delivered), {self.kills} kills ({self.worker_kills} of single workers,"
            f" {self.workers} worker(s)), {self.duplicates} duplicates, {self.seconds:.0f} s"
        )


async def soak(
    folder: Path,
    ca: TestCA,
    upstream: Upstream,
    *,
    messages: int,
    concurrency: int,
    kill_every: tuple[float, float] = (1.0, 3.0),
    kill_after: tuple[int, int] | None = None,
    per_session: int = 5,
    spoof_every: int = 10,
    seed: int = 0,
    drain_timeout: float = 120.0,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    lease: float = 5.0,
) -> SoakResult:
    """Submit ``messages`` with ``concurrency`` clients while SIGKILLing the gateway.

    A kill comes after ``kill_every`` seconds (a random time in the range) of uptime, or
    once ``kill_after`` more messages have been accepted, whichever is first. With
    ``workers`` > 1, three kills in four hit one worker (the supervisor restarts it; what
    it held waits for its ``lease`` to expire) and the fourth the supervisor itself.
    """
    limit = concurrency * 2 + 10
    config = prepare(
        folder,
        ca,
        upstream_port=upstream.port,
        config={
            "limits": {
                "max_connections": limit + 10,
                "max_connections_per_client": limit,
                "max_connections_per_network": limit,
            },
            "delivery": {"concurrency": DELIVERY_CONCURRENCY, "lease": lease},
            "server": {"workers": workers},
        },
    )
    gw = await GatewayProcess(config).start()
    rng = random.Random(seed)
    result = SoakResult(workers=workers)
    todo = list(range(messages))
    finished = 0
    all_done = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def client() -> None:
        nonlocal finished
        while finished < messages:
            if not todo:
                await asyncio.sleep(0.05)
                continue
            batch = [todo.pop() for _ in range(min(per_session, len(todo)))]
            try:
                smtp = await connect(gw.port, ca)
            except (aiosmtplib.SMTPException, OSError):  # down or restarting
                todo.extend(batch)
                await asyncio.sleep(0.1)
                continue
            try:
                while batch:
                    index = batch[-1]
                    spoofed = index % spoof_every == spoof_every - 1
                    token = secrets.token_hex(8)
                    large = index % spoof_every == 2  # every tenth, in a body file
                    content = soak_message(token, spoofed=spoofed, large=large)
                    result.sent[token] = content
                    try:
                        await smtp.sendmail(SOAK_SENDER, [SOAK_RCPT], content)
                    except aiosmtplib.SMTPResponseException as exc:
                        result.refused[token] = exc.code
                    except aiosmtplib.SMTPRecipientsRefused as exc:
                        result.refused[token] = exc.recipients[0].code
                    except (aiosmtplib.SMTPException, OSError):
                        result.unknown.add(token)
                        break  # the session is gone; the index goes back with the batch
                    else:
                        result.accepted.add(token)
                    if token in result.accepted or spoofed:
                        batch.pop()
                        finished += 1
            finally:
                smtp.close()
                todo.extend(batch)
        all_done.set()

    async def killer() -> None:
        while not all_done.is_set():
            # Kill after a random time, or sooner after a random number of acceptances,
            # so a fast machine sees as many kills as a slow one.
            deadline = loop.time() + rng.uniform(*kill_every)
            quota = len(result.accepted) + (rng.randint(*kill_after) if kill_after else messages)
            while loop.time() < deadline and len(result.accepted) < quota:
                if all_done.is_set():
                    return
                await asyncio.sleep(0.02)
            result.kills += 1
            alive = gw.workers() if workers > 1 else []
            if alive and result.kills % 4:  # the fourth, eighth… kill: the supervisor
                os.kill(rng.choice(alive), signal.SIGKILL)
                result.worker_kills += 1
            else:
                await gw.kill()
                await gw.start()
            if progress:
                progress(f"kill {result.kills}: {finished}/{messages} done")

    try:
        await asyncio.gather(killer(), *(client() for _ in range(concurrency)))
        deadline = loop.time() + drain_timeout
        while loop.time() < deadline:
            _collect(result, upstream.arrived)
            result.left_in_queue = gw.queue_states()
            if not result.left_in_queue and result.accepted <= set(result.arrived):
                break
            await asyncio.sleep(0.2)
    finally:
        await gw.stop()
    verified = run_cli("register", "verify", "--config", config)
    if verified.returncode != 0:
        result.register = (verified.stdout + verified.stderr).strip()[-500:]
    result.seconds = loop.time() - started
    _collect(result, upstream.arrived)
    result.left_in_queue = gw.queue_states()
    result.stray_files = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file()
        and p.name not in _EXPECTED_FILES
        and p.parent.name != "keys"
        # the register's signed daily head files
        and not (p.parent.name == "register-checkpoints" and p.name.startswith("head-"))
    )
    # One pass over the log for anything shaped like a token in a subject or body line
    # (searching it once per message took minutes at 20,000 messages).
    logged = {a or b for a, b in _LOGGED.findall(gw.output())}
    result.logged_content = [t for t in result.sent if t in logged]
    return result


def _collect(result: SoakResult, arrived: list[Arrived]) -> None:
    result.arrived.clear()
    result.damaged.clear()
    for a in arrived:
        m = _TOKEN.search(a.content)
        token = m.group(1).decode() if m else "(no token)"
        result.arrived[token] += 1
        head = _RECEIVED.match(a.content)
        # The gateway adds exactly one Received: field in front and changes nothing else.
        sent = result.sent.get(token)
        if (
            head is None
            or sent is None
            or len(a.content) - head.end() != len(sent)
            or not a.content.endswith(sent)  # compared in place: no copy of each message
        ):
            result.damaged.append(token)
