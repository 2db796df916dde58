#!/usr/bin/env python3
"""Memory of one ``serve`` worker: idle, with 500 idle sessions, and for a 25 MB message.

The real ``c4f-gateway serve`` (``[server] workers = 1``: the one process is the worker),
the example config's whole policy chain, relaying to a Maildir. Resident memory is read
from ``/proc/PID/status`` (``VmRSS`` now, ``VmHWM`` the peak since the last reset; the
peak is reset through ``/proc/PID/clear_refs`` before each step when the kernel allows).

1. **Idle**: RSS once ``serve`` has started and settled (the baseline of this run).
2. **Idle sessions**: ``--connections`` clients (500) each do EHLO, STARTTLS, EHLO and
   AUTH, then stay idle; RSS with all of them open, above the baseline.
3. **One large message**: a fresh ``serve``; its own baseline, then one message of
   ``--size`` (25 MiB: a short text part and a PDF-like attachment, so every filter reads
   it) through STARTTLS + AUTH; the peak RSS until the 250, and until it is delivered;
   the RSS kept once it has been delivered.

Each figure is given as MiB, as a ratio to the baseline and (for the message) to the
message's size, against the goals of issue 16: idle at most 100 MB per worker, 500 idle
connections at most 150 MB more, a 25 MB message at most 4x its size in peak RSS.

    .venv/bin/python bench/memory_bench.py
    .venv/bin/python bench/memory_bench.py --connections 200 --size 10000000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from relay_throughput import CONTACT, SUBJECT, approve_contact, production_filters
from support.harness import PASSWORD
from support.pki import TestCA
from support.rawsmtp import authenticated
from support.subprocess_gateway import GatewayProcess, client_tls, prepare

SENDER = "alice@c4f.example"  # prepare()'s staff account (a cheap hash: 500 logins)
MiB = 1024 * 1024
IDLE_GOAL = 100 * 1000 * 1000
CONNECTIONS_GOAL = 150 * 1000 * 1000
MESSAGE_GOAL = 4.0


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid``, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


def reset_peak(pid: int) -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+, our own process)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def large_message(size: int) -> bytes:
    """A message of about ``size`` octets: a text part and a base64 PDF-like attachment."""
    head = (
        f"From: {SENDER}\r\nTo: {CONTACT}\r\nSubject: {SUBJECT}Contact report\r\n"
        "Message-ID: <memory-bench@c4f.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "The report is attached.\r\n\r\n"
        "--b1\r\nContent-Type: application/pdf; name=report.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=report.pdf\r\n\r\n"
    ).encode()
    tail = b"\r\n--b1--\r\n"
    raw = b"%PDF-1.7\n" + os.urandom((size - len(head) - len(tail)) * 57 // 78)
    encoded = base64.b64encode(raw)
    lines = b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    return head + lines + tail


def mib(n: float) -> str:
    return f"{n / MiB:7.1f} MiB"


async def settle(pid: int, seconds: float = 2.0) -> int:
    await asyncio.sleep(seconds)
    return status(pid)["VmRSS"]


async def idle_sessions(folder: Path, ca: TestCA, count: int) -> tuple[int, int]:
    """(baseline RSS, RSS with ``count`` logged-in idle sessions)."""
    gw = await GatewayProcess(config(folder, ca, count)).start()
    assert gw.proc is not None
    try:
        baseline = await settle(gw.proc.pid)
        tls = client_tls(ca)
        sessions = []
        for start in range(0, count, 50):
            batch = range(start, min(count, start + 50))
            sessions += await asyncio.gather(
                *(authenticated(gw.port, tls, SENDER, PASSWORD) for _ in batch)
            )
        loaded = await settle(gw.proc.pid)
        for s in sessions:
            with contextlib.suppress(Exception):
                await s.close()
        return baseline, loaded
    finally:
        await gw.stop()


async def one_message(folder: Path, ca: TestCA, size: int) -> tuple[int, int, int, int, int]:
    """(baseline RSS, message size, peak RSS until 250, peak RSS until delivered, RSS
    once delivered and settled)."""
    gw = await GatewayProcess(config(folder, ca, 10, message_size=size)).start()
    assert gw.proc is not None
    pid = gw.proc.pid
    try:
        content = large_message(size)
        baseline = await settle(pid)
        if not reset_peak(pid):
            print("memory_bench: cannot reset VmHWM; peaks include start-up", file=sys.stderr)
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=gw.port, start_tls=True, tls_context=client_tls(ca)
        )
        await client.connect(timeout=60)
        await client.login(SENDER, PASSWORD)
        _errors, reply = await client.sendmail(SENDER, [CONTACT], content, timeout=300)
        accepted = status(pid)["VmHWM"]
        await client.quit()
        assert "Queued as" in reply, reply
        maildir = gw.settings.delivery.maildir / "new"
        deadline = time.monotonic() + 300
        while not (maildir.exists() and any(maildir.iterdir())):
            if time.monotonic() > deadline:
                raise SystemExit("memory_bench: the message was not delivered in 300 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        delivered = status(pid)["VmHWM"]
        after = await settle(pid)
        return baseline, len(content), accepted, delivered, after
    finally:
        await gw.stop()


def config(folder: Path, ca: TestCA, connections: int, message_size: int = 0) -> Path:
    limit = connections + 20
    path = prepare(
        folder,
        ca,
        config={
            "server": {"workers": 1},
            "limits": {
                "max_connections": limit,
                "max_connections_per_client": limit,
                "max_connections_per_network": limit,
                "idle_timeout_before_login": 600.0,
                "idle_timeout": 600.0,
                "max_session_age": 3600.0,
                "max_message_size": max(32 * MiB, message_size + MiB),
            },
            "pipeline": {"filters": production_filters(), "allow_partial_pipeline": False},
        },
    )
    approve_contact(path)
    return path


def verdict(ok: bool) -> str:
    return "meets the goal" if ok else "OVER THE GOAL"


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="c4f-memory-") as tmp:
        folder = Path(tmp)
        ca = TestCA(folder / "pki")
        idle, loaded = await idle_sessions(folder / "sessions", ca, args.connections)
        base2, size, accepted, delivered, after = await one_message(
            folder / "message", ca, args.size
        )
    more = loaded - idle
    print(f"memory of one serve worker (pid RSS, {os.cpu_count()} CPUs)")
    print(f"idle:                  {mib(idle)}  {verdict(idle <= IDLE_GOAL)} (100 MB)")
    print(
        f"{args.connections} idle sessions:   {mib(loaded)}  +{mib(more).strip()} "
        f"({loaded / idle:.2f}x idle, {more / args.connections / 1024:.1f} KiB each)  "
        f"{verdict(more * 500 / args.connections <= CONNECTIONS_GOAL)} (150 MB per 500)"
    )
    print(f"message:               {mib(size)}  (idle before it: {mib(base2).strip()})")
    for label, peak in (("peak until 250", accepted), ("peak until delivered", delivered)):
        print(
            f"{label + ':':<22} {mib(peak)}  {peak / size:.2f}x the message, "
            f"{peak / base2:.2f}x idle, +{(peak - base2) / size:.2f}x the message above idle  "
            f"{verdict(peak <= MESSAGE_GOAL * size)} (4x)"
        )
    print(f"{'after, settled:':<22} {mib(after)}  +{mib(after - base2).strip()} above idle kept")
    return 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=500, help="idle sessions (500)")
    p.add_argument("--size", type=int, default=25 * MiB, help="message size in octets (25 MiB)")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
