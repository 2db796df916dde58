"""MIME-4, the long run: the checks of tests/policies/test_disclaimer_fuzz.py for a set time.

    .venv/bin/python bench/disclaimer_fuzz.py [--minutes 10] [--seed 0]

Runs batches of hypothesis examples (hostile trees, then mutated golden files, in turn), one
seed per batch, until the time is up; prints the number of examples, what the filter did with
them and the slowest one (reliability-tests.md 5: each input in under a second). On a failing
example hypothesis shrinks it and the script stops with its traceback and exit code 1.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "policies")]

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_disclaimer_fuzz import check, hostile_messages  # noqa: E402
from test_disclaimer_property import NOTICES, mutated  # noqa: E402

from gateway.logging import configure  # noqa: E402

BATCH = 500


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--minutes", type=float, default=10.0)
    args.add_argument("--seed", type=int, default=0, help="the first batch's seed")
    opts = args.parse_args()
    configure("console", "warning")  # refusals log at info: keep the output to the report
    outcomes: collections.Counter[str] = collections.Counter()
    slowest = (0.0, b"")

    def run_one(content: bytes, which: int) -> None:
        nonlocal slowest
        start = time.perf_counter()
        outcomes[check(content, NOTICES[which])] += 1
        took = time.perf_counter() - start
        if took > slowest[0]:
            slowest = (took, content)

    runs: list[Callable[[], None]] = []
    for strategy in (hostile_messages(), mutated()):

        @settings(
            max_examples=BATCH,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(content=strategy, which=st.sampled_from([0, 1]))
        def batch(content: bytes, which: int) -> None:
            run_one(content, which)

        runs.append(batch)
    started = time.monotonic()
    end = started + opts.minutes * 60
    batches = 0
    while time.monotonic() < end:
        seed(opts.seed + batches)(runs[batches % len(runs)])()
        batches += 1
    total = sum(outcomes.values())
    minutes = (time.monotonic() - started) / 60
    print(f"MIME-4 fuzz: {total} examples in {batches} batches, {minutes:.1f} minutes")
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"  slowest example: {slowest[0] * 1e3:.1f} ms ({len(slowest[1])} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
