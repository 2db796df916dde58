"""``serve`` with several worker processes (issue 16, "Both cores"): the real command.

The supervisor binds the ports once and forks the workers; each accepts connections and
delivers the queue, taking messages with a lease. Checked here with real processes, a
real (slow) upstream and the SQLite file: two workers never send the same message, a
worker killed with -9 only delays what it held until its lease expires, a dead worker is
restarted while the port keeps answering, SIGHUP reaches every worker, periodic jobs run
in the first worker only, and SIGTERM stops them all.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from support.pki import TestCA
from support.subprocess_gateway import (
    GatewayProcess,
    client_tls,
    connect,
    prepare,
    run_cli,
    soak,
    soak_message,
)
from support.upstream import Upstream, UpstreamBehaviour
from support.workers import Workers, events

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in _status(pid)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


async def until(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def submit(gw: GatewayProcess, ca: TestCA, tokens: list[str]) -> dict[str, bytes]:
    """One message per token, four sessions at a time; every one must get its 250."""
    sent: dict[str, bytes] = {}
    todo = list(tokens)

    async def session() -> None:
        client = await connect(gw.port, ca)
        try:
            while todo:
                token = todo.pop()
                sent[token] = soak_message(token, spoofed=False)
                _errors, reply = await client.sendmail(ALICE, [BOB], sent[token])
                assert "Queued as" in reply
        finally:
            client.close()

    await asyncio.gather(*(session() for _ in range(4)))
    return sent


def token_of(content: bytes) -> str:
    head = content.split(b"@soak.test>", 1)[0]
    return head.rsplit(b"<", 1)[1].decode()


async def slow_upstream(ca: TestCA, delay: float) -> Upstream:
    cert = ca.issue("localhost", sans=["localhost", "127.0.0.1"])
    return await Upstream(cert, UpstreamBehaviour(data_delay=delay)).start()


async def test_dur11_two_workers_never_deliver_the_same_message(tmp_path: Path, ca: TestCA) -> None:
    """Both workers poll a queue fed faster than a slow upstream takes it: every message
    arrives once, byte for byte, each with one outcome in the register, which verifies."""
    upstream = await slow_upstream(ca, 0.3)
    config = prepare(
        tmp_path,
        ca,
        upstream_port=upstream.port,
        config={"server": {"workers": 2}, "delivery": {"concurrency": 3}},
    )
    gw = await GatewayProcess(config).start()
    try:
        tokens = [secrets.token_hex(8) for _ in range(30)]
        sent = await submit(gw, ca, tokens)
        await upstream.wait_for(len(tokens), timeout=60)
        await until(lambda: not gw.queue_states(), what="the queue to drain")
        await asyncio.sleep(1.0)  # a second copy would have arrived by now
    finally:
        stopped = await gw.stop()
        await upstream.stop()
    assert stopped == 0
    copies = Counter(token_of(a.content) for a in upstream.arrived)
    assert copies == Counter({t: 1 for t in tokens})
    for a in upstream.arrived:
        assert a.content.endswith(b"\r\n" + sent[token_of(a.content)])
    outcomes = gw.sql("SELECT queue_id, count(*) FROM register WHERE kind = 'outcome' GROUP BY 1")
    assert len(outcomes) == len(tokens) and {n for _, n in outcomes} == {1}
    # Both workers took part, and none ever held a message another was sending.
    attempts = events(gw, "delivery_attempt")
    assert len(attempts) == len(tokens)
    assert {e["worker"] for e in attempts} == {0, 1}
    assert not events(gw, "delivery_lease_lost")
    verified = run_cli("register", "verify", "--config", config)
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_dur11_kill9_of_a_worker_holding_a_lease_delays_its_message_until_it_expires(
    tmp_path: Path, ca: TestCA
) -> None:
    upstream = await slow_upstream(ca, 1.5)
    lease = 2.0
    config = prepare(
        tmp_path,
        ca,
        upstream_port=upstream.port,
        config={"server": {"workers": 2}, "delivery": {"lease": lease, "concurrency": 1}},
    )
    gw = await GatewayProcess(config).start()
    try:
        [token] = tokens = [secrets.token_hex(8)]
        sent = await submit(gw, ca, tokens)
        # The message is leased and its DATA is at the upstream, which holds its reply.
        await until(lambda: "DATA" in upstream.transcript, what="DATA upstream")
        [(owner, until_at)] = gw.sql("SELECT owner, until FROM queue_lease")
        holder = int(owner.split("-")[0])
        assert holder in gw.workers()
        os.kill(holder, signal.SIGKILL)

        [arrived] = await upstream.wait_for(1, timeout=30)
        arrived_at = time.time()
        await until(lambda: not gw.queue_states(), what="the queue to drain")
        await asyncio.sleep(0.5)
    finally:
        stopped = await gw.stop()
        await upstream.stop()
    assert stopped == 0
    assert arrived.content.endswith(b"\r\n" + sent[token])
    assert len(upstream.arrived) == 1  # the killed worker's copy never completed
    # Nobody took it before the dead worker's lease ran out, and another process sent it.
    assert arrived_at >= until_at
    [attempt] = events(gw, "delivery_attempt")
    assert attempt["delivered"] == 1
    [died] = events(gw, "worker_died")
    assert died["pid"] == holder and died["signal"] == signal.SIGKILL
    [(outcomes,)] = gw.sql("SELECT count(*) FROM register WHERE kind = 'outcome'")
    assert outcomes == 1


async def test_the_supervisor_restarts_a_killed_worker_and_the_port_keeps_answering(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    """The default: one worker per CPU. Jobs run in the first worker only; SIGHUP reaches
    every worker; SIGTERM stops them all and the supervisor exits 0."""
    cpus = os.cpu_count() or 1
    if cpus < 2:
        pytest.skip("one CPU: serve runs one process by default")
    config = prepare(tmp_path, ca, upstream_port=upstream.port, config={"server": {"workers": 0}})
    gw = await GatewayProcess(config).start()
    try:
        await until(lambda: len(gw.workers()) == cpus, what="one worker per CPU")
        first = gw.workers()
        victim = first[-1]
        os.kill(victim, signal.SIGKILL)
        await until(lambda: not alive(victim), what="the worker to die")
        for _ in range(10):  # meanwhile every new connection is answered
            _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            greeting = await asyncio.wait_for(_reader.readline(), 5)
            writer.close()
            assert greeting.startswith(b"220 "), greeting
        await until(
            lambda: victim not in gw.workers() and len(gw.workers()) == cpus,
            what="the worker to be restarted",
        )
        [died] = events(gw, "worker_died")
        assert died["pid"] == victim and died["signal"] == signal.SIGKILL
        restarted = [e for e in events(gw, "worker_started") if e["worker"] == died["worker"]]
        assert len(restarted) == 2 and restarted[-1]["pid"] in gw.workers()

        client = await connect(gw.port, ca)
        content = soak_message("c0ffee", spoofed=False)
        _errors, reply = await client.sendmail(ALICE, [BOB], content)
        await client.quit()
        assert "Queued as" in reply
        [arrived] = await upstream.wait_for(1)
        assert arrived.content.endswith(b"\r\n" + content)

        # SIGHUP: every worker reads its certificate again.
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGHUP)
        await until(lambda: len(events(gw, "tls_reloaded")) == cpus, what="tls_reloaded")
        assert {e["worker"] for e in events(gw, "tls_reloaded")} == set(range(cpus))
        # Periodic jobs (held messages, checkpoints, purges…) run in the first worker only.
        await until(lambda: events(gw, "job_done"), what="a periodic job")
        assert {e["worker"] for e in events(gw, "job_done")} == {0}
        pids = gw.workers()
    finally:
        stopped = await gw.stop()
    assert stopped == 0
    assert not any(alive(p) for p in pids)
    stopped_in_order = events(gw, "worker_stopped")
    assert {e["pid"] for e in stopped_in_order} == set(pids)
    assert stopped_in_order[-1]["worker"] == 0  # the first last: its checkpoint covers all


async def test_implicit_tls_is_served_by_every_worker(tmp_path: Path, ca: TestCA) -> None:
    """The implicit-TLS port is shared too: many new connections, all verified TLS."""
    config = prepare(tmp_path, ca, config={"server": {"workers": 2}})
    gw = await GatewayProcess(config).start()
    try:
        for _ in range(8):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                gw.ports["implicit_tls"],
                ssl=client_tls(ca),
                server_hostname="localhost",
            )
            greeting = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            assert greeting.startswith(b"220 "), greeting
    finally:
        assert await gw.stop() == 0


async def test_a_worker_that_cannot_start_stops_serve_with_its_one_line(
    tmp_path: Path, ca: TestCA
) -> None:
    """A bad setting is found before anything is forked: one line, no traceback."""
    config = prepare(tmp_path, ca, config={"server": {"workers": 2}})
    key = tmp_path / "keys" / "spool.key"
    key.chmod(0o644)  # readable by others: refused
    done = run_cli("serve", "--config", config)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("c4f-gateway serve: config error: ")
    assert "spool" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


async def test_kill9_soak_of_workers_and_supervisor_keeps_every_accepted_message(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    """DUR-2 with two workers (bench/soak_kill9.py --workers 2, small): kill -9 of single
    workers and of the supervisor under load; every 250 is delivered, the register
    verifies."""
    result = await soak(
        tmp_path / "gw",
        ca,
        upstream,
        messages=200,
        concurrency=10,
        kill_every=(1.0, 2.5),
        kill_after=(15, 40),
        workers=2,
        lease=2.0,
        seed=16,
    )
    print(result.summary())
    assert result.problems() == []
    assert result.worker_kills >= 1 and result.kills > result.worker_kills
    assert len(result.accepted) == 180


async def test_serve_on_a_database_from_before_leases(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    """A queue from an earlier release has no lease table: serve creates it and delivers
    what was queued (the table is new, so no upgrade step)."""
    config = prepare(tmp_path, ca, upstream_port=upstream.port, config={"server": {"workers": 2}})
    gw = await GatewayProcess(config).start()
    client = await connect(gw.port, ca)
    await client.quit()
    assert await gw.stop() == 0
    db = gw.settings.storage.database
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE queue_lease")
    conn.commit()
    conn.close()
    await gw.start()
    try:
        client = await connect(gw.port, ca)
        content = soak_message("0ld0", spoofed=False)
        await client.sendmail(ALICE, [BOB], content)
        await client.quit()
        [arrived] = await upstream.wait_for(1)
        assert arrived.content.endswith(b"\r\n" + content)
    finally:
        assert await gw.stop() == 0
    assert gw.sql("SELECT count(*) FROM queue_lease") == [(0,)]


async def test_auth9_failed_logins_are_counted_across_workers(tmp_path: Path, ca: TestCA) -> None:
    """The login throttle holds for a client whichever worker takes its connections: each
    worker tells the others of every failure (gateway.throttle.Peers)."""
    config = prepare(
        tmp_path,
        ca,
        config={
            "server": {"workers": 2},
            "auth": {"max_failures_per_client": 4, "max_failures_per_session": 1},
        },
    )
    gw = await GatewayProcess(config).start()
    workers = Workers(gw)
    codes = []
    try:
        for n in range(16):
            await workers.only(workers.pids[n % 2])  # the kernel would choose: take turns
            client = aiosmtplib.SMTP(
                hostname="localhost",
                port=gw.port,
                start_tls=True,
                tls_context=client_tls(ca),
                timeout=10,
            )
            await client.connect()
            await client.ehlo()  # again, after STARTTLS: AUTH is offered only now
            try:
                await client.auth_plain(ALICE, "not-the-password")
            except aiosmtplib.SMTPAuthenticationError as exc:
                codes.append(exc.code)
            finally:
                client.close()
            # Not stopped while it frees the slot: a worker stopped inside the connection
            # table's lock makes the other refuse connections (421), as it should.
            await until(
                lambda n=n: len(events(gw, "connection_closed")) == n + 1,
                what="the gateway to close the connection",
            )
    finally:
        await workers.all()
        assert await gw.stop() == 0
    # Four failures in all, then every worker refuses to try: 454 before any hash check.
    assert codes == [421] * 4 + [454] * 12
    failed, throttled = events(gw, "auth_failed"), events(gw, "auth_throttled")
    assert len(failed) == 4 and len(throttled) == 12
    assert {e["worker"] for e in failed} == {0, 1}  # each worker counted the other's


async def test_a_delivery_longer_than_the_lease_keeps_it(tmp_path: Path, ca: TestCA) -> None:
    """The upstream takes 2.5 s per message, the lease is 1 s: renewed while the delivery
    runs, it keeps the other worker off, and each message still goes once."""
    upstream = await slow_upstream(ca, 2.5)
    config = prepare(
        tmp_path,
        ca,
        upstream_port=upstream.port,
        config={"server": {"workers": 2}, "delivery": {"lease": 1.0, "concurrency": 2}},
    )
    gw = await GatewayProcess(config).start()
    try:
        tokens = [secrets.token_hex(8) for _ in range(3)]
        await submit(gw, ca, tokens)
        await upstream.wait_for(3, timeout=30)
        await until(lambda: not gw.queue_states(), what="the queue to drain")
        await asyncio.sleep(3.0)  # a second copy, sent after 1 s, would be here by now
    finally:
        stopped = await gw.stop()
        await upstream.stop()
    assert stopped == 0
    assert Counter(token_of(a.content) for a in upstream.arrived) == Counter(tokens)
    assert len(events(gw, "delivery_attempt")) == 3
    assert not events(gw, "delivery_lease_lost")


async def test_a_second_serve_on_the_same_database_is_refused(tmp_path: Path, ca: TestCA) -> None:
    """Two serves would each clear the other's leases: the second waits for the first's
    processes (as after a kill -9 of a supervisor), then stops with one line."""
    config = prepare(tmp_path, ca, config={"server": {"workers": 2}})
    gw = await GatewayProcess(config).start()
    try:
        other = config.with_name("other.toml")
        other.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
        started = time.monotonic()
        done = await asyncio.to_thread(run_cli, "serve", "--config", other)
        waited = time.monotonic() - started
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("c4f-gateway serve: error: ")
        assert "another `c4f-gateway serve` is running on this database" in done.stderr
        assert len(done.stderr.splitlines()) == 1 and waited >= 14
        assert gw.proc is not None and gw.proc.returncode is None  # the first goes on
        client = await connect(gw.port, ca)
        await client.quit()
    finally:
        assert await gw.stop() == 0
