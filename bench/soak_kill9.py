#!/usr/bin/env python3
"""DUR-2 at full size: the kill -9 soak (reliability-tests.md §4).

Submits unique messages from concurrent staff sessions (STARTTLS + AUTH) to the real
``c4f-gateway serve`` process, SIGKILLs and restarts it every 2-20 s, then checks the
invariants: every message answered 250 arrives at the (recording, TLS) upstream at least
once and byte-identical; nothing refused arrives; duplicates only from deliveries in
flight at a kill; the queue drains; no orphan files; no content in the log. The code is
the same as the CI test's (``tests/queue/test_durability_soak.py``), only bigger.

    .venv/bin/python bench/soak_kill9.py --messages 10000 --concurrency 20
    .venv/bin/python bench/soak_kill9.py --workers 2 --messages 2000

``--workers N`` runs ``serve`` with N worker processes under its supervisor: three kills
in four then hit a single worker (the supervisor restarts it; the messages it held wait
for their ``--lease`` to expire, then another worker sends them), the fourth kills the
supervisor, whose workers stop with it, and ``serve`` is started again. At the end the
register must verify (``register verify``) as well.

Exit status 0 when every invariant holds. Note (DUR-3): kill -9 does not test fsync,
the page cache survives it; that needs dm-flakey or a VM reset.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.pki import TestCA
from support.subprocess_gateway import soak
from support.upstream import Upstream

from gateway.logging import configure


async def main(args: argparse.Namespace) -> int:
    configure("console", "error")
    with tempfile.TemporaryDirectory(prefix="c4f-soak-") as tmp:
        folder = Path(tmp)
        ca = TestCA(folder / "pki")
        upstream = await Upstream(ca.issue("localhost", sans=["localhost", "127.0.0.1"])).start()
        try:
            result = await soak(
                folder / "gw",
                ca,
                upstream,
                messages=args.messages,
                concurrency=args.concurrency,
                kill_every=(args.kill_min, args.kill_max),
                drain_timeout=args.drain_timeout,
                seed=args.seed,
                progress=lambda line: print(line, flush=True),
                workers=args.workers,
                lease=args.lease,
            )
        finally:
            await upstream.stop()
    print(result.summary())
    problems = result.problems()
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print("OK: every DUR-2 invariant holds")
    return 1 if problems else 0


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--kill-min", type=float, default=2.0, help="seconds of uptime (default 2)")
    ap.add_argument("--kill-max", type=float, default=20.0, help="seconds of uptime (default 20)")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--workers", type=int, default=1, help="worker processes of serve (1: no supervisor)"
    )
    ap.add_argument("--lease", type=float, default=5.0, help="[delivery] lease, s (default 5)")
    return ap.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
