"""The register's index answers as the whole register does, through every change: new
records, delivery outcomes, annotations (consent, safeguarding), approvals, a purge, a
key rotation with its re-seal and retirement, and a rebuild by the schema step.

"Answers as" means: for each filter (and a manager's scope), the same records in the
same order, the same count, the same status, consent and retention hold on each row, and
the same summary figures as the fold of the whole register (the source of truth).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from support.pki import TestCA
from support.register import DAY, accepted, file_bytes, make_register, open_register, record
from support.register_seed import CAFCASS, NOW, SINCE, UNTIL, at, seed
from support.subprocess_gateway import prepare, run_cli

from gateway.crypto import Keyring, key_id_of
from gateway.events import HoldEvent, Outcome
from gateway.register import index, index_duties, index_page, index_read, tally
from gateway.register.criteria import Filters
from gateway.register.ledger import Register, step_5_index_register
from gateway.register.purge import purge
from gateway.register.record import Record
from gateway.register.retention import local_day
from gateway.register.scope import RegisterScope
from gateway.register.summary import summarise, summarise_records
from gateway.settings import load
from gateway.settings.register import register_settings

MONA = "mona@c4f.example"
BOB = "bob@c4f.example"
CHECKS = [
    Filters(),
    Filters(include_notices=True),
    Filters(since=at("2026-10-01", 0), until=at("2026-11-03", 0)),
    Filters(since=at("2026-10-06", 0), until=at("2026-12-01", 0), include_notices=True),
    Filters(until=at("2026-11-01", 0)),
    Filters(staff="BOB@c4f.example"),
    Filters(staff="nobody@c4f.example"),
    Filters(family="f-7"),
    Filters(organisation="cafcass"),
    Filters(organisation="nowhere"),
    Filters(recipient="police"),
    Filters(recipient="SCHOOL.example"),
    Filters(consent="refused"),
    Filters(consent="not-recorded"),
    Filters(incomplete=True),
    Filters(refused=True),
    Filters(retention_hold=True),
    Filters(held_for_approval=True),
    Filters(kinds=("admin", "purge")),
]
SCOPES = [None, RegisterScope(MONA, frozenset({BOB})), RegisterScope("nobody", frozenset())]


pytestmark = pytest.mark.usefixtures("london")


@pytest.fixture
def config(tmp_path: Path, ca: TestCA) -> Path:
    return prepare(tmp_path / "gw", ca)


def row(r: Record) -> tuple[object, ...]:
    return (r.seq, r.staff, r.family, r.consent, r.informed, r.status, r.retention_hold, r.missing)


def agrees(reg: Register) -> int:
    """Every check through the index equals the whole register's fold; returns how many
    (filter, scope) pairs matched something, so a test sees the checks were not empty."""
    every = reg.records()
    nonempty = 0
    for f in CHECKS:
        for scope in SCOPES:
            expected = [r for r in reg.records(f) if scope is None or scope.shows(r)][::-1]
            found = index_page.page(reg, f, scope, offset=0, limit=1000)
            assert found is not None, f
            total, records = found
            assert (total, [row(r) for r in records]) == (
                len(expected),
                [row(r) for r in expected],
            ), (f, scope)
            nonempty += bool(expected)
        if f == Filters():  # a later page: the same records as the fold's, further on
            newest = reg.records(f)[::-1]
            second = index_page.page(reg, f, None, offset=2, limit=3)
            assert second is not None
            assert [r.seq for r in second[1]] == [r.seq for r in newest[2:5]]
    duties: list[tuple[int, int]] = []
    for when in (NOW, NOW + 400 * DAY):  # the year-long retention hold reviews due later
        today = local_day(when).isoformat()
        for scope in SCOPES:
            shown = [r for r in every if scope is None or scope.shows(r)]
            slow = (
                sum(1 for r in shown if r.inform_overdue(when)),
                sum(1 for r in shown if r.own_hold is not None and r.own_hold.review_due(today)),
            )
            assert index_duties.duty_counts(reg, scope, when, today, 14) == slow, (when, scope)
            duties.append(slow)
    assert duties[0][0] > 0  # something was overdue to count
    assert index.DISCLOSED == tally.DISCLOSED
    for counting, tallied in (
        (
            "SELECT month, kind, coalesce(staff, 0), facts, count(*) FROM register_index"
            " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            "SELECT * FROM register_tally ORDER BY 1, 2, 3, 4",
        ),
        (
            "SELECT month, coalesce(staff, 0), org, count(*) FROM register_index"
            " WHERE facts & 8 AND org IS NOT NULL"  # index.DISCLOSED
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "SELECT * FROM register_tally_org ORDER BY 1, 2, 3",
        ),
    ):
        expected = [tuple(r) for r in reg.store.query(counting)]
        assert [tuple(r) for r in reg.store.query(tallied)] == expected and expected
    for since, until in (
        (SINCE, UNTIL),
        (None, None),
        (at("2026-10-06", 0), at("2026-11-04", 0)),  # parts of two months
        (at("2026-11-02", 0), at("2026-11-05", 0)),  # part of one
        (None, at("2026-11-03", 0)),
        (at("2026-10-01", 0), None),
    ):
        for scope in SCOPES:
            slow = summarise_records(
                every,
                since=since,
                until=until,
                now=NOW,
                scope=None if scope is None else (lambda r, s=scope: s.shows(r)),
            )
            fast = summarise(reg, since=since, until=until, now=NOW, scope=scope)
            assert fast == slow, (since, scope)
            strip = summarise(reg, since=since, until=until, now=NOW, scope=scope, charts=False)
            assert strip == dataclasses.replace(
                slow, by_month=[], by_organisation=[], holds_by_month=[], incomplete_by_age=[]
            )
    return nonempty


def test_index_answers_as_the_register_through_every_change(config: Path) -> None:
    reg = open_register(config)
    seqs = seed(reg)
    baseline = agrees(reg)
    assert baseline > 20

    both = ("j.smith@cafcass.example", "k@police.example")  # counted for each organisation
    known = {**CAFCASS, "k@police.example": {"organisation": "Police"}}
    record(reg, accepted("Q14", at("2026-11-10"), rcpts=both, recipients=known))
    orgs = dict(summarise(reg, since=SINCE, until=UNTIL, now=NOW).by_organisation)
    assert (orgs["Cafcass North"], orgs["Police"]) == (5, 2)
    agrees(reg)

    with reg.store.transaction() as conn:  # delivered: the status of Q1's row changes
        reg.outcome(
            conn,
            Outcome("Q1", at("2026-09-10", 13), 1, "delivered", (next(iter(CAFCASS)),), "250 ok"),
        )
    assert reg.record(seqs["Q1"]).status == "delivered"  # type: ignore[union-attr]
    agrees(reg)

    reg.annotate(seqs["Q4"], MONA, consent="obtained")  # no longer incomplete
    reg.annotate(seqs["Q12"], MONA, family="F-7", safeguarding=True)  # kept, with its family
    record(reg, accepted("Q13", at("2026-11-19"), recipients=CAFCASS, disclosure={"family": "f-7"}))
    assert index_duties.duty_counts(reg, None, NOW + 400 * DAY, "2027-12-31", 14) == (6, 1)
    kept = {r.seq for r in reg.records(Filters(retention_hold=True))}
    assert seqs["Q12"] in kept and len(kept) == 2  # Q13 through its family
    agrees(reg)

    with reg.store.transaction() as conn:  # Q7 approved: no longer held, now disclosed
        reg.hold(conn, HoldEvent("Q7", at("2026-11-05"), "approved", MONA, "ok"))
    assert summarise(reg, since=SINCE, until=UNTIL, now=NOW).held_now == 0
    agrees(reg)

    gone = purge(reg, actor="admin", only=seqs["Q3"])  # x@school.example only wrote here
    assert gone.records == [seqs["Q3"]]
    assert "x@school.example" not in index_read.names(reg, "recipient").values()
    assert "school.example" not in index_read.names(reg, "domain").values()
    agrees(reg)


def test_index_is_renewed_by_a_reseal_and_works_after_the_old_key_is_retired(
    config: Path,
) -> None:
    reg = open_register(config)
    seed(reg)
    key_file = register_settings(load(config)).key_file
    old = Keyring.load(key_file).current_id
    assert (
        run_cli("keys", "rotate", "register", "--config", config, "--by", "admin").returncode == 0
    )
    reg = open_register(config)
    record(reg, accepted("Q20", at("2026-11-19"), staff=BOB, recipients=CAFCASS))  # new key
    done = run_cli("keys", "reseal", "register", "--config", config, "--by", "admin")
    assert done.returncode == 0, done.stderr
    assert "register index: 15 records indexed again under" in done.stdout
    then = time.time() - 120  # past retire's settling time
    os.utime(key_file, (then, then))
    done = run_cli("keys", "retire", old, "--config", config, "--by", "admin")
    assert done.returncode == 0, done.stdout + done.stderr
    reg = open_register(config)
    assert old not in reg.keyring.ids
    sealed = reg.store.query("SELECT sealed FROM register_term WHERE sealed IS NOT NULL")
    assert sealed and {key_id_of(bytes(r[0])) for r in sealed} == {reg.keyring.current_id}
    # Found by the new key's hashes alone: BOB's two records, before and after the rotation.
    assert [r.staff for r in reg.records(Filters(staff=BOB))] == [BOB, BOB]
    assert agrees(reg) > 20


def test_schema_step_builds_the_index_of_an_existing_register(config: Path) -> None:
    reg = open_register(config)
    seed(reg)
    before = reg.store.query("SELECT * FROM register_index ORDER BY seq")
    with reg.store.transaction() as conn:
        for table in ("register_index_term", "register_index", "register_term"):
            conn.execute(f"DELETE FROM {table}")  # noqa: S608
    rows = step_5_index_register(reg.store, reg.keyring)
    assert rows == len(reg.records())
    after = reg.store.query("SELECT * FROM register_index ORDER BY seq")
    assert [tuple(r)[:6] for r in after] == [tuple(r)[:6] for r in before]
    agrees(reg)


def test_index_keeps_no_name_address_or_reference_in_the_clear(tmp_path: Path) -> None:
    reg = make_register(tmp_path)
    seqs = seed(reg)
    reg.annotate(seqs["Q12"], MONA, family="F-7742")
    found = index_page.page(reg, Filters(family="f-7742"), None, offset=0, limit=5)
    assert found is not None and (found[0], [r.seq for r in found[1]]) == (1, [seqs["Q12"]])
    assert [r.seq for r in reg.records(Filters(family="F-7742"))] == [seqs["Q12"]]
    reg.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    on_disk = file_bytes(tmp_path)
    assert b"register_tally" in on_disk and b"register_term" in on_disk  # the tables are there
    for clear in (BOB, MONA, "alice@c4f.example", "Cafcass North", "cafcass", "Police",
                  "school.example", "j.smith", "F-7742", "f-7742", "Court order"):  # fmt: skip
        assert clear.encode() not in on_disk, clear
