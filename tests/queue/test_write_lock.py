"""Writers in several processes take turns on the database's write lock (issue 16,
DUR-12 in tests/CATALOGUE.md, gateway.store_lock): without sleeping in SQLite's busy
handler, and never for ever.

Real processes on one SQLite file: two that write at the same time both get through,
each having waited for the other; one that holds the lock and is stopped (SIGSTOP) makes
the others fail after the bound (a session answers 451 4.3.0), and once it goes on every
writer does again.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest
from support.pki import TestCA
from support.subprocess_gateway import GatewayProcess, connect, prepare, soak_message
from support.upstream import Upstream

from gateway.store import Store
from gateway.store_lock import WriteLockTimeout

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"
ROWS = 150

# A writer process: opens the store, says "ready", waits for "go", then writes rows one
# transaction each until it has written ROWS and has seen the other writer's ROWS (so
# whichever starts first is still writing while the other runs), and prints how often it
# had to wait for the other process.
WRITER = """
import sys, time
from pathlib import Path
from gateway.store import Store
store = Store(Path(sys.argv[1]))
store.ensure("CREATE TABLE IF NOT EXISTS item (writer TEXT, n INTEGER)")
me, rows = sys.argv[2], int(sys.argv[3])
other = "b" if me == "a" else "a"
print("ready", flush=True)
sys.stdin.readline()
n, deadline = 0, time.monotonic() + 60
while True:
    with store.transaction() as conn:
        conn.execute("INSERT INTO item VALUES (?, ?)", (me, n))
    n += 1
    if n >= rows:
        seen = store.query("SELECT count(*) AS c FROM item WHERE writer = ?", (other,))
        if seen[0]["c"] >= rows:
            break
    if time.monotonic() > deadline:
        sys.exit(f"{me}: the other writer did not get {rows} rows in within 60 s")
print("waits", store.write_lock.waits, flush=True)
store.close()
"""

# A process that takes the write lock (inside a write transaction), says so, and waits
# for a line on stdin before it commits.
HOLDER = """
import sys
from pathlib import Path
from gateway.store import Store
store = Store(Path(sys.argv[1]))
store.ensure("CREATE TABLE IF NOT EXISTS item (writer TEXT, n INTEGER)")
with store.transaction() as conn:
    conn.execute("INSERT INTO item VALUES ('holder', 0)")
    print("holding", flush=True)
    sys.stdin.readline()
print("committed", flush=True)
store.close()
"""


def python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> int:
    """Kill ``proc`` if it still runs, close its pipes; its exit status."""
    if proc.poll() is None:
        proc.kill()
    code = proc.wait(10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return code


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A process holding the write lock of ``tmp_path/gateway.db``, then stopped."""
    db = tmp_path / "gateway.db"
    proc = python(HOLDER, str(db))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "holding\n"
        proc.send_signal(signal.SIGSTOP)
        yield db, proc
    finally:
        finish(proc)


def test_dur12_two_processes_writing_at_once_both_get_through(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    Store(db).close()
    writers = [python(WRITER, str(db), name, str(ROWS)) for name in ("a", "b")]
    try:
        for w in writers:
            assert w.stdout is not None and w.stdout.readline() == "ready\n"
        for w in writers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        outputs = [w.communicate(timeout=120) for w in writers]
    finally:
        for w in writers:
            finish(w)
    for w, (_out, err) in zip(writers, outputs, strict=True):
        assert w.returncode == 0, err
        assert err == ""
    waits = [int(out.split()[-1]) for out, _err in outputs]
    # Each took turns with the other: some of its writes waited on the lock.
    assert sum(waits) > 0, waits
    store = Store(db)
    try:
        order = [r["writer"] for r in store.query("SELECT writer FROM item ORDER BY rowid")]
        per_writer = {
            w: [r["n"] for r in store.query("SELECT n FROM item WHERE writer = ?", (w,))]
            for w in ("a", "b")
        }
    finally:
        store.close()
    # Every write of each got in, in its own order, at least ROWS each.
    for rows in per_writer.values():
        assert len(rows) >= ROWS and rows == list(range(len(rows))), rows
    # Neither waited for the other to finish: while the one ran on, the other's writes
    # got in between its own (a writer starved by the other shows here as one switch).
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert switches >= 2, switches


def test_dur12_a_stopped_holder_makes_a_writer_fail_after_the_bound_not_hang(
    holder: tuple[Path, subprocess.Popen[str]],
) -> None:
    db, proc = holder
    store = Store(db, write_wait=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(WriteLockTimeout) as timed_out, store.transaction() as conn:
            conn.execute("INSERT INTO item VALUES ('late', 1)")
        waited = time.monotonic() - started
        assert 0.9 <= waited < 5.0, waited
        assert "held the write lock for more than 1 s" in str(timed_out.value)
        # Again: the first wait's taker thread is still blocked; this writer waits on it.
        with pytest.raises(WriteLockTimeout), store.transaction():
            pass
        # The holder goes on and commits; the next write gets the lock.
        proc.send_signal(signal.SIGCONT)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "committed\n"
        with store.transaction() as conn:
            conn.execute("INSERT INTO item VALUES ('after', 2)")
        rows = [tuple(r) for r in store.query("SELECT writer, n FROM item ORDER BY rowid")]
    finally:
        store.close()
    assert rows == [("holder", 0), ("after", 2)]
    assert proc.wait(10) == 0


@pytest.mark.slow
async def test_dur12_serve_answers_451_after_the_bound_while_another_process_holds_the_lock(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    """A real ``serve`` with two workers; a third process takes the write lock and is
    stopped: the message gets 451 4.3.0 once the bound (10 s) has passed, and after the
    holder has gone on, the same client's next message gets its 250 and is delivered."""
    config = prepare(
        tmp_path / "gw",
        ca,
        upstream_port=upstream.port,
        config={"server": {"workers": 2}},
    )
    gw = await GatewayProcess(config).start()
    db = gw.settings.storage.database
    proc = python(HOLDER, str(db))
    try:
        client = await connect(gw.port, ca, timeout=60)
        assert proc.stdout is not None
        assert await asyncio.to_thread(proc.stdout.readline) == "holding\n"
        proc.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail(ALICE, [BOB], soak_message("10cced", spoofed=False))
        waited = time.monotonic() - started
        assert refused.value.code == 451
        assert refused.value.message.startswith("4.3.0 ")
        assert 9.5 <= waited < 30.0, waited
        proc.send_signal(signal.SIGCONT)
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert await asyncio.to_thread(proc.stdout.readline) == "committed\n"
        content = soak_message("0pen", spoofed=False)
        _errors, reply = await client.sendmail(ALICE, [BOB], content)
        assert "Queued as" in reply
        await client.quit()
        [arrived] = await upstream.wait_for(1, timeout=30)
        assert arrived.content.endswith(b"\r\n" + content)
    finally:
        finish(proc)
        assert await gw.stop() == 0
    assert "held the write lock" in gw.output()
