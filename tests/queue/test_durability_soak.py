"""DUR-2: the kill -9 soak at a size CI can afford (the full size: ``bench/soak_kill9.py``).

300 unique messages from 10 concurrent staff sessions while the real gateway process is
SIGKILLed and restarted every 1-3 s of uptime, or after 20-60 more acceptances when that
comes first (so a fast machine sees as many kills as a slow one). Every 10th message has
a spoofed From: and must be refused; another in ten is about 100 KB, kept in a body file
beside the database (a kill between the file and its row leaves an orphan that the next
start removes). Invariants (reliability-tests.md DUR-2): every
message answered 250 arrives at the upstream at least once, byte-identical apart from our
Received: field; nothing refused arrives; duplicates only from deliveries in flight at a
kill; the queue drains; no orphan files; no message content in the log.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.pki import TestCA
from support.subprocess_gateway import SoakResult, soak
from support.upstream import Upstream

MESSAGES = 300


@pytest.mark.slow
async def test_dur2_kill9_soak_keeps_every_accepted_message(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    result = await soak(
        tmp_path / "gw",
        ca,
        upstream,
        messages=MESSAGES,
        concurrency=10,
        kill_every=(1.0, 3.0),
        kill_after=(20, 60),
    )
    print(result.summary())
    assert result.problems() == []
    # The soak really did what it says: kills happened, refusals were exercised, and
    # every message index ended up accepted (90%) or refused as spoofed (10%).
    assert result.kills >= MESSAGES * 9 // 10 // 60
    assert len(result.accepted) == MESSAGES * 9 // 10
    assert sorted(set(result.refused.values())) == [550]
    assert len(result.refused) == MESSAGES // 10


def test_soak_invariants_catch_loss_leaks_damage_and_a_full_queue() -> None:
    """The checker itself: each broken invariant is reported (so the soak can fail)."""
    ok = SoakResult(accepted={"a", "b"}, refused={"r": 550}, kills=1)
    ok.arrived.update({"a": 2, "b": 1})
    assert ok.problems() == []
    broken = SoakResult(
        accepted={"a", "lost"},
        refused={"r": 550},
        damaged=["a"],
        left_in_queue=["corrupt"],
        stray_files=["gateway.db-journal"],
        logged_content=["a"],
        kills=1,
    )
    broken.arrived.update({"a": 6, "r": 1})
    problems = "\n".join(broken.problems())
    for words in (
        "answered 250 never arrived",
        "arrived altered",
        "refused message(s) were delivered",
        "5 duplicates for 1 kills",
        "the queue did not drain",
        "orphan files",
        "message content in the log",
    ):
        assert words in problems
