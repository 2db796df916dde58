#!/usr/bin/env python3
"""Relay throughput: N messages from K concurrent sessions through the gateway to a sink.

The real ``c4f-gateway serve`` (subprocess, production scrypt cost for the staff login,
the full policy chain of ``config/gateway.example.toml``) relays over verified TLS to the
shared counting sink (``../shared/bench/sink.py``, given a certificate from a throwaway
CA); ``../shared/bench/smtpload.py`` submits with STARTTLS + AUTH, from a@example.org (the
staff member's alias) to b@example.org (an approved contact), with ``[consent:obtained]``
in the subject (SMTPLOAD_SUBJECT), so every filter runs and nothing is held.

Without ``--postfix``: accepted msgs/s (250s received by the clients) and end-to-end msgs/s
(until the sink has counted them all), against the sink alone (STARTTLS, no AUTH, nothing
relayed) measured in the same run with the same load generator.

    .venv/bin/python bench/relay_throughput.py -n 2000 -c 20 --per-conn 10

With ``--postfix HOST:PORT:USER:PASSWORD``: the side-by-side with Postfix doing the same job
(STARTTLS + SASL AUTH in, TLS out to the same sink), through ``../shared/bench/compare.sh``:
10 KB and 1 MB, one and --per-conn messages per connection, the targets interleaved;
delivered msg/s, ratio to Postfix, latency MAIL->250, CPU per message. Postfix must relay
to --sink-port (as root, once):

    apt-get install -y postfix sasl2-bin libsasl2-modules
    ../shared/bench/postfix-tls-auth.sh setup 2587 2526 bench@example.test bench-secret
    postfix start
    .venv/bin/python bench/relay_throughput.py \
        --postfix 127.0.0.1:2587:bench@example.test:bench-secret

bench/RESULTS.md keeps the latest table, its command and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.pki import TestCA
from support.subprocess_gateway import GatewayProcess, prepare

from gateway.directory.staff import StaffDirectory
from gateway.settings import load
from gateway.store import Store

REPO = Path(__file__).resolve().parents[1]
SENDER = "alice@c4f.example"
PASSWORD = "bench password for alice"  # noqa: S105 (a throwaway account)
# compare.py's load sends from a@example.org to b@example.org: the staff member's alias
# and an approved contact.
ALIAS = "a@example.org"
CONTACT = "b@example.org"
# The consent tag, so that the approval filter lets every message through (nothing held).
SUBJECT = "[consent:obtained] "


def production_filters() -> list[str]:
    """The policy chain the example config runs (every filter, in production order)."""
    example = tomllib.loads((REPO / "config" / "gateway.example.toml").read_text("utf-8"))
    filters: list[str] = example["pipeline"]["filters"]
    return filters


def approve_contact(config: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "c4f-gateway"),
            *("contacts", "add", CONTACT, "--name", "Bench Recipient"),
            *("--org", "Bench Partner Agency", "--approved-by", "Bench Admin"),
            *("--verified", "benchmark fixture", "--not-fax", "--no-dns"),
            *("--config", str(config)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"contacts add failed: {done.stderr.strip() or done.stdout.strip()}")


def check_postfix_relays_to(sink_port: int) -> None:
    """One line and exit 2 when the local Postfix would relay somewhere else: its
    messages would never reach the sink this run counts."""
    if shutil.which("postconf") is None:
        return  # not this machine's Postfix: trust the operator
    relayhost = subprocess.run(
        ["postconf", "-h", "relayhost"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if relayhost != f"[127.0.0.1]:{sink_port}":
        print(
            f"relay_throughput: Postfix relays to {relayhost or '(nowhere)'!r}, not "
            f"[127.0.0.1]:{sink_port}; run ../shared/bench/postfix-tls-auth.sh setup PORT "
            f"{sink_port} USER PASSWORD, or give --sink-port",
            file=sys.stderr,
        )
        raise SystemExit(2)


def read_count(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return -1


def start_sink(tools: Path, port: int, count: Path, cert: Path, key: Path) -> subprocess.Popen[str]:
    sink = subprocess.Popen(
        [
            sys.executable,
            str(tools / "sink.py"),
            str(port),
            str(count),
            "--procs",
            "2",
            "--cert",
            str(cert),
            "--key",
            str(key),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    line = sink.stdout.readline()
    if "listening" not in line:
        sink.kill()
        raise SystemExit(f"sink.py did not start: {line!r}")
    return sink


def load_run(
    tools: Path, port: int, args: argparse.Namespace, n: int, auth: bool
) -> dict[str, Any]:
    cmd = [sys.executable, str(tools / "smtpload.py"), "127.0.0.1", str(port), "--starttls"]
    cmd += ["-n", str(n), "-c", str(args.c), "--size", str(args.size)]
    cmd += ["--per-conn", str(args.per_conn), "--from", ALIAS, "--to", CONTACT]
    if auth:
        cmd += ["--user", SENDER, "--password", PASSWORD]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"smtpload failed ({done.returncode}): {done.stderr[-2000:]}") from None
    return result


def measure(
    tools: Path, port: int, args: argparse.Namespace, count: Path, n: int, relayed: bool
) -> dict[str, Any]:
    """One smtpload run; for a relaying target, wait until the sink has every message."""
    c0 = read_count(count)
    r = load_run(tools, port, args, n, auth=relayed)
    if relayed:
        last, moved = read_count(count), time.time()
        while last < c0 + r["sent"] and time.time() - moved < 30:  # until done or stalled
            time.sleep(0.005)
            if (now := read_count(count)) != last:
                last, moved = now, time.time()
        r["delivered"] = read_count(count) - c0
        r["end_to_end_per_s"] = round(r["delivered"] / (time.time() - r["start_ts"]), 1)
    else:
        r["delivered"] = r["sent"]
        r["end_to_end_per_s"] = r["accepted_per_s"]
    return r


async def main(args: argparse.Namespace) -> int:
    tools = args.tools
    if not (tools / "smtpload.py").exists():
        raise SystemExit(f"{tools}: smtpload.py and sink.py not found (use --tools DIR)")
    if args.postfix:
        check_postfix_relays_to(args.sink_port)
    os.environ["SMTPLOAD_SUBJECT"] = SUBJECT  # read by every smtpload.py this run starts
    with tempfile.TemporaryDirectory(prefix="c4f-bench-") as tmp:
        folder = Path(tmp)
        ca = TestCA(folder / "pki")
        # Its own file name: prepare() below issues (and rewrites) "localhost" files.
        cert = ca.issue("sink", sans=["localhost", "127.0.0.1"])
        count = folder / "sink.count"
        sink = start_sink(tools, args.sink_port, count, cert.cert, cert.key)
        limit = args.c * 2 + 10
        config = prepare(
            folder / "gw",
            ca,
            upstream_port=args.sink_port,
            config={
                "limits": {
                    "max_connections": limit + 10,
                    "max_connections_per_client": limit,
                    "max_connections_per_network": limit,
                },
                "delivery": {"concurrency": args.delivery_concurrency},
                # serve's default (the test harness runs one process): one worker per CPU.
                "server": {"workers": args.workers},
                "pipeline": {"filters": production_filters(), "allow_partial_pipeline": False},
            },
            staff=(),
        )
        store = Store(load(config).storage.database)
        # Production scrypt cost. The alias is the sender compare.sh's load uses.
        StaffDirectory(store).add(SENDER, PASSWORD, (ALIAS,))
        store.close()
        approve_contact(config)
        gw = await GatewayProcess(config).start()
        try:
            if args.postfix:
                await asyncio.to_thread(compare_with_postfix, tools, gw, args, count)
            else:
                rows = await asyncio.to_thread(run_all, tools, gw.port, args, count)
        finally:
            await gw.stop()
            sink.terminate()
            sink.wait(10)
    if not args.postfix:
        print_table(rows, args)
    return 0


def run_all(tools: Path, port: int, args: argparse.Namespace, count: Path) -> list[dict[str, Any]]:
    warm = max(20, args.n // 10)
    measure(tools, args.sink_port, args, count, warm, relayed=False)
    measure(tools, port, args, count, warm, relayed=True)
    rows = []
    for rep in range(args.reps):  # interleaved, so drift hits both alike
        for name, target, relayed in (
            ("sink alone", args.sink_port, False),
            ("c4f-gateway", port, True),
        ):
            r = measure(tools, target, args, count, args.n, relayed)
            r.update(name=name, rep=rep)
            print(
                f"rep {rep} {name}: accepted {r['accepted_per_s']}/s, end-to-end "
                f"{r['end_to_end_per_s']}/s, errors {r['errors'] or 0}",
                file=sys.stderr,
                flush=True,
            )
            rows.append(r)
    return rows


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    def med(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in rows if r["name"] == name))

    base_acc, base_e2e = med("sink alone", "accepted_per_s"), med("sink alone", "end_to_end_per_s")
    print(
        f"\nN={args.n} messages of {args.size} bytes, {args.c} concurrent sessions, "
        f"{args.per_conn} per connection, median of {args.reps}; ratios against the sink "
        "alone in the same run\n"
    )
    print("| target | accepted msgs/s | end-to-end msgs/s | accepted ratio | end-to-end ratio "
          "| p50 / p99 ms | errors |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in ("sink alone", "c4f-gateway"):
        mine = [r for r in rows if r["name"] == name]
        acc, e2e = med(name, "accepted_per_s"), med(name, "end_to_end_per_s")
        p50 = statistics.median(r["lat_ms"]["p50"] or 0 for r in mine)
        p99 = statistics.median(r["lat_ms"]["p99"] or 0 for r in mine)
        errors: dict[str, int] = {}
        for r in mine:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
            if r["delivered"] < r["n"]:
                errors["undelivered"] = errors.get("undelivered", 0) + r["n"] - r["delivered"]
        print(
            f"| {name} | {acc:.1f} | {e2e:.1f} | {acc / base_acc:.3f} | {e2e / base_e2e:.3f} "
            f"| {p50:.0f} / {p99:.0f} | {errors or 0} |"
        )


def compare_with_postfix(
    tools: Path, gw: GatewayProcess, args: argparse.Namespace, count: Path
) -> None:
    assert gw.proc is not None
    targets = [
        f"postfix={args.postfix}:postfix",
        f"c4f-gateway=127.0.0.1:{gw.port}:{SENDER}:{PASSWORD}:{gw.proc.pid}",
    ]
    cmd = ["sh", str(tools / "compare.sh"), "--count-file", str(count), "--reps", str(args.reps)]
    cmd += ["--n-small", str(args.n), "--n-large", str(args.n_large or max(20, args.n // 20))]
    cmd += ["--sessions", str(args.c), "--per-conn", str(args.per_conn), "--sizes", args.sizes]
    cmd += targets  # compare.py's load runs smtpload.py with its own addresses: ALIAS, CONTACT
    print(
        f"Side by side with Postfix (compare.sh, subject tag {SUBJECT.strip()!r}; "
        "ratio = delivered msgs/s against Postfix):",
        flush=True,
    )
    done = subprocess.run(cmd, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        raise SystemExit(f"compare.sh failed ({done.returncode})")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="messages per run (default 2000)")
    ap.add_argument("-c", type=int, default=20, help="concurrent sessions (default 20)")
    ap.add_argument("--per-conn", type=int, default=10, help="messages per session (default 10)")
    ap.add_argument("--size", type=int, default=10240, help="message bytes (default 10240)")
    ap.add_argument(
        "--sizes",
        default="10240,1048576",
        help="with --postfix: message sizes (default 10240,1048576)",
    )
    ap.add_argument(
        "--n-large",
        type=int,
        default=0,
        help="with --postfix: messages per 1 MB run (default n/20)",
    )
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--delivery-concurrency",
        type=int,
        default=20,
        help="[delivery] concurrency (default 20, Postfix's default_destination_concurrency_limit)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="[server] workers of serve (default 0: one per CPU, serve's default)",
    )
    ap.add_argument("--sink-port", type=int, default=2526)
    ap.add_argument(
        "--postfix",
        metavar="HOST:PORT:USER:PASSWORD",
        help="side by side with this Postfix (relaying to --sink-port) instead",
    )
    ap.add_argument(
        "--tools",
        type=Path,
        default=REPO.parent / "shared" / "bench",
        help="folder with smtpload.py, sink.py, compare.sh (default ../shared/bench)",
    )
    return ap.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
