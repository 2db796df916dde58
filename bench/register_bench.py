"""Disclosure register throughput: append N entries, verify them, read them back; and
what a manager waits for: the first page of the console's /register and the summary.

Each throughput figure is printed with a baseline measured in the same run on the same
machine: plain SQLite inserts of rows of the same size (same file settings: WAL,
synchronous=FULL, same batch per transaction) for appends, and a plain scan of those
rows for verify and read-back. The ratio is what the register's MACs, per-entry
encryption, its index and message parsing cost on top of storing the bytes.

The reads are timed at 1,000 entries and at N in the same run, through the functions the
list page calls (``pages_register.list_page``: the page's 100 rows through the register's
index, decrypting only those, plus the period's summary strip; and the duty counts above
it), then the summary of the whole register alone, a manager's page (``[web]
manager_scope = "reports"``) and one staff member's. Target:
under 200 ms at 100,000 entries, and under 3x the same read at 1,000.

    .venv/bin/python bench/register_bench.py [--entries 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateway.crypto import Keyring
from gateway.events import Accepted, HoldEvent, Outcome
from gateway.register.codec import MacKey
from gateway.register.ledger import Register
from gateway.register.scope import RegisterScope
from gateway.register.summary import summarise
from gateway.store import Store
from gateway.web.pages_register import PAGE_SIZE, filters_of, list_page
from gateway.web.register_duties import duty_counts

SMALL = 1_000

HEADER = (
    b"From: alice@c4f.example\r\nTo: j.smith@cafcass.example\r\n"
    b"Subject: Contact session report\r\nMessage-ID: <bench@c4f.example>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
)
MESSAGE = HEADER + b"Notes from the supervised contact session.\r\n" * 40
DISCLOSURE = {
    "consent": "not-sought",
    "reason": "Court direction to share the session notes",
    "family": "F-1042",
    "nature": "Contact session report",
    "safeguarding": False,
    "external": True,
}
RECIPIENTS = {
    "j.smith@cafcass.example": {
        "contact_id": "C-012",
        "organisation": "Cafcass North",
        "display_name": "Jane Smith",
    }
}


STAFF = [f"staff{k}@c4f.example" for k in range(12)]
CONSENTS = ("obtained", "obtained", "obtained", "refused", "not-sought", "not-recorded")
DAY = 86400.0


def event(i: int, at: float | None = None) -> Accepted:
    """Message ``i``: one of 12 staff, 2,000 families, 60 organisations, mixed consent."""
    address = f"worker{i % 400}@agency{i % 60}.example"
    disclosure = {
        **DISCLOSURE,
        "family": f"F-{i % 2000}",
        "consent": CONSENTS[i % len(CONSENTS)],
        "reason": "" if i % 7 == 0 else DISCLOSURE["reason"],
    }
    return Accepted(
        queue_id=f"B{i:011d}",
        received_at=time.time() if at is None else at,
        staff=STAFF[i % len(STAFF)],
        peer="192.0.2.10",
        mail_from=STAFF[i % len(STAFF)],
        rcpt_tos=(address,),
        content=MESSAGE,
        sha256=hashlib.sha256(MESSAGE).hexdigest(),
        annotations={
            "disclosure": disclosure,
            "recipients": {address: {"organisation": f"Agency {i % 60}"}},
        },
    )


def open_register(folder: Path) -> Register:
    folder.mkdir(parents=True, exist_ok=True)
    Keyring.create(folder / "register.key")
    MacKey.create(folder / "register-mac.key")
    return Register(
        Store(folder / "register.db"),
        Keyring.load(folder / "register.key"),
        folder / "register-mac.key",
        folder / "checkpoints",
    )


def fill(reg: Register, n: int, batch: int) -> None:
    """n entries over the last two years: messages, one in five followed by its delivery,
    one in twenty-five held for approval and then decided."""
    start = time.time() - 730 * DAY
    step = 730 * DAY / n
    written = i = 0
    while written < n:
        with reg.store.transaction() as conn:
            for _ in range(batch):
                if written >= n:
                    break
                ev = event(i, start + written * step)
                reg.accepted(conn, ev)
                written += 1
                if i % 25 == 0 and written + 2 <= n:
                    reg.hold(conn, HoldEvent(ev.queue_id, ev.received_at, "held", ""))
                    decided = "approved" if i % 50 else "refused"
                    reg.hold(conn, HoldEvent(ev.queue_id, ev.received_at + 3600, decided, "m"))
                    written += 2
                elif i % 5 == 0 and written < n:
                    to = ev.rcpt_tos
                    reg.outcome(
                        conn, Outcome(ev.queue_id, ev.received_at + 5, 1, "delivered", to, "250")
                    )
                    written += 1
                i += 1


def median_time(fn: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    """(the first call, the median of ``repeat`` calls), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times)


def bench_reads(reg: Register) -> dict[str, tuple[float, float]]:
    """What a manager waits for, through the functions the console's pages call."""
    console: Any = SimpleNamespace(register=reg, clock=time.time)
    everyone = RegisterScope("admin@c4f.example", None)
    manager = RegisterScope("m@c4f.example", frozenset(STAFF[:3]))
    every = filters_of({})
    total, shown, _ = list_page(console, everyone, every, 1)
    roots = reg.store.query("SELECT count(*) FROM register WHERE kind IN ('accepted','refused')")
    assert total == roots[0][0] and len(shown) == min(total, PAGE_SIZE), (total, len(shown))

    def first_page(scope: RegisterScope) -> None:
        # What GET /register reads: the page with its summary strip, and the duty counts.
        list_page(console, scope, every, 1)
        duty_counts(reg, scope, time.time())

    return {
        "first page of /register": median_time(lambda: first_page(everyone)),
        "summary, whole register": median_time(
            lambda: summarise(reg, since=None, until=None, now=time.time())
        ),
        "a manager's first page": median_time(lambda: first_page(manager)),
        "one staff member": median_time(
            lambda: list_page(console, everyone, filters_of({"staff": STAFF[1]}), 1)
        ),
    }


def bench_register(
    folder: Path, n: int, batch: int
) -> tuple[float, float, float, int, dict[str, tuple[float, float]]]:
    reg = open_register(folder)
    start = time.perf_counter()
    fill(reg, n, batch)
    append = time.perf_counter() - start
    reg.checkpoint()

    start = time.perf_counter()
    result = reg.verify()
    verify = time.perf_counter() - start
    assert result.ok and result.count == n, result.problems[:3]

    start = time.perf_counter()
    records = reg.records()
    read = time.perf_counter() - start
    assert sum(1 + len(r.followups) for r in records) == n
    size = reg.store.query(
        "SELECT avg(length(sealed) + length(entry_key) + length(mac) + length(public)"
        " + length(sha256) + length(queue_id) + 80) AS s FROM register"
    )[0]["s"]
    reads = bench_reads(reg)
    reg.store.close()
    return append, verify, read, int(size), reads


def bench_baseline(folder: Path, n: int, batch: int, size: int) -> tuple[float, float]:
    conn = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, at REAL, data BLOB)")
    rows = [os.urandom(size) for _ in range(batch)]
    start = time.perf_counter()
    for done in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO t (at, data) VALUES (?, ?)",
            [(time.time(), r) for r in rows[: min(batch, n - done)]],
        )
        conn.execute("COMMIT")
    insert = time.perf_counter() - start
    start = time.perf_counter()
    count = sum(1 for _ in conn.execute("SELECT seq, at, data FROM t ORDER BY seq"))
    scan = time.perf_counter() - start
    assert count == n
    conn.close()
    return insert, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction")
    args = parser.parse_args()
    n = args.entries
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = open_register(folder / "small")
        fill(small, SMALL, args.batch)
        bench_reads(small)  # warms the process (imports, caches) for both sizes alike
        small_reads = bench_reads(small)
        small.store.close()
        append, verify, read, size, reads = bench_register(folder / "big", n, args.batch)
        insert, scan = bench_baseline(folder, n, args.batch, size)

    def line(what: str, seconds: float, base: float, base_name: str) -> None:
        print(
            f"{what:<28}{n / seconds:>10,.0f} entries/s  ({seconds:6.2f} s)   "
            f"{base_name}: {n / base:>10,.0f} rows/s   ratio {seconds / base:5.1f}x slower"
        )

    print(f"{n:,} entries of about {size} bytes, {args.batch} per transaction")
    line("register append", append, insert, "plain insert")
    line("register verify (MAC chain)", verify, scan, "plain scan")
    line("register read (decrypt all)", read, scan, "plain scan")
    print()
    print(f"reads (median of 7; first call)  {SMALL:>9,} entries  {n:>9,} entries   ratio")
    for what, (first, median) in reads.items():
        s_first, s_median = small_reads[what]
        print(
            f"{what:<28}{s_median * 1000:>10.1f} ms ({s_first * 1000:5.1f})"
            f"{median * 1000:>10.1f} ms ({first * 1000:5.1f})   {median / s_median:5.1f}x"
        )


if __name__ == "__main__":
    main()
