"""A register seeded with every kind of record at known local times (Europe/London):
the summary, index and console tests count on it exactly.

Imported by tests; holds no tests of its own.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.events import HoldEvent
from gateway.register.ledger import Register
from support.register import accepted, record, refused

LONDON = ZoneInfo("Europe/London")
HOUR = 3600.0
CAFCASS = {"j.smith@cafcass.example": {"organisation": "Cafcass North"}}


def at(day: str, hour: int = 12) -> float:
    y, m, d = map(int, day.split("-"))
    return datetime(y, m, d, hour, tzinfo=LONDON).timestamp()


NOW = at("2026-11-20")
SINCE, UNTIL = at("2026-09-01", 0), at("2026-12-01", 0)  # --since 2026-09-01 --until 2026-11-30


def disclosure(consent: str, reason: str = "", external: bool = True) -> dict[str, object]:
    found: dict[str, object] = {"consent": consent, "external": external}
    if reason:
        found["reason"] = reason
    return found


def seed(reg: Register) -> dict[str, int]:
    """Every kind of record, at known local times; returns queue ID -> entry."""

    def hold(queue_id: str, when: float, action: str, actor: str = "", **kw: str) -> None:
        with reg.store.transaction() as conn:
            reg.hold(conn, HoldEvent(queue_id, when, action, actor, **kw))  # type: ignore[arg-type]

    record(reg, accepted("Q11", at("2026-08-01"), recipients=CAFCASS))  # before the period
    record(
        reg,
        accepted("Q1", at("2026-09-10"), recipients=CAFCASS, disclosure=disclosure("obtained")),
    )
    record(
        reg,
        accepted(
            "Q2",
            at("2026-10-05"),
            recipients=CAFCASS,
            disclosure=disclosure("not-sought", "Court order"),
            staff="bob@c4f.example",
        ),
    )
    record(  # refused consent, no reason: incomplete; the person was informed later
        reg,
        accepted(
            "Q3", at("2026-10-06"), rcpts=("x@school.example",), disclosure=disclosure("refused")
        ),
    )
    record(  # the same organisation written differently: counted once with Cafcass North
        reg,
        accepted(
            "Q4",
            at("2026-11-01"),
            rcpts=("a@cafcass.example",),
            recipients={"a@cafcass.example": {"organisation": " cafcass  NORTH "}},
        ),
    )
    record(
        reg,
        accepted(
            "Q5",
            at("2026-11-02"),
            rcpts=("k@police.example",),
            recipients={"k@police.example": {"organisation": "Police"}},
            disclosure=disclosure("refused", "Risk of harm"),
        ),
    )
    hold("Q5", at("2026-11-02"), "held", reasons=("consent refused",))
    hold("Q5", at("2026-11-02") + 2 * HOUR, "approved", "mona@c4f.example", note="Agreed")
    record(
        reg,
        accepted(
            "Q6", at("2026-11-03"), recipients=CAFCASS, disclosure=disclosure("not-sought", "X")
        ),
    )
    hold("Q6", at("2026-11-03"), "held", reasons=("consent not sought",))
    hold("Q6", at("2026-11-03") + 4 * HOUR, "refused", "mona@c4f.example", note="No")
    record(
        reg,
        accepted("Q7", at("2026-11-04"), recipients=CAFCASS, disclosure=disclosure("obtained")),
    )
    hold("Q7", at("2026-11-04"), "held", reasons=("contact requires approval",))
    notice = accepted("N8", at("2026-11-04", 13), staff="", rcpts=("alice@c4f.example",))
    record(reg, dataclasses.replace(notice, annotations={"notice": "held"}))
    record(reg, refused("R9", at("2026-11-05")))
    record(
        reg,
        accepted(
            "Q10",
            at("2026-11-06"),
            rcpts=("carol@c4f.example",),
            disclosure=disclosure("not-recorded", external=False),
        ),
    )
    record(reg, accepted("Q12", at("2026-11-18"), recipients=CAFCASS))
    seqs = {
        r["queue_id"]: r["seq"]
        for r in reg.store.query("SELECT queue_id, seq FROM register WHERE ref = 0")
    }
    reg.annotate(seqs["Q3"], "mona@c4f.example", informed="yes", informed_on="2026-10-20")
    return seqs
