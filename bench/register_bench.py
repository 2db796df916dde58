"""Disclosure register throughput: append N entries, verify them, read them back.

Each figure is printed with a baseline measured in the same run on the same machine:
plain SQLite inserts of rows of the same size (same file settings: WAL,
synchronous=FULL, same batch per transaction) for appends, and a plain scan of those
rows for verify and read-back. The ratio is what the register's MACs, per-entry
encryption and message parsing cost on top of storing the bytes.

    .venv/bin/python bench/register_bench.py [--entries 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from gateway.crypto import Keyring
from gateway.events import Accepted
from gateway.register.codec import MacKey
from gateway.register.ledger import Register
from gateway.store import Store

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


def event(i: int) -> Accepted:
    return Accepted(
        queue_id=f"B{i:011d}",
        received_at=time.time(),
        staff="alice@c4f.example",
        peer="192.0.2.10",
        mail_from="alice@c4f.example",
        rcpt_tos=("j.smith@cafcass.example",),
        content=MESSAGE,
        sha256=hashlib.sha256(MESSAGE).hexdigest(),
        annotations={"disclosure": DISCLOSURE, "recipients": RECIPIENTS},
    )


def bench_register(folder: Path, n: int, batch: int) -> tuple[float, float, float, int]:
    Keyring.create(folder / "register.key")
    MacKey.create(folder / "register-mac.key")
    reg = Register(
        Store(folder / "register.db"),
        Keyring.load(folder / "register.key"),
        folder / "register-mac.key",
        folder / "checkpoints",
    )
    events = [event(i) for i in range(batch)]
    start = time.perf_counter()
    for done in range(0, n, batch):
        with reg.store.transaction() as conn:
            for ev in events[: min(batch, n - done)]:
                reg.accepted(conn, ev)
    append = time.perf_counter() - start
    reg.checkpoint()

    start = time.perf_counter()
    result = reg.verify()
    verify = time.perf_counter() - start
    assert result.ok and result.count == n, result.problems[:3]

    start = time.perf_counter()
    records = reg.records()
    read = time.perf_counter() - start
    assert len(records) == n
    size = reg.store.query(
        "SELECT avg(length(sealed) + length(entry_key) + length(mac) + length(public)"
        " + length(sha256) + length(queue_id) + 80) AS s FROM register"
    )[0]["s"]
    reg.store.close()
    return append, verify, read, int(size)


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
        append, verify, read, size = bench_register(folder, n, args.batch)
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


if __name__ == "__main__":
    main()
