"""The register at a glance: `register report --summary` and the figures behind it, counted
exactly over a register seeded with every kind of record (real keys, a real SQLite file)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from support.register import open_register, register_config
from support.register_seed import NOW, SINCE, UNTIL, at, seed
from support.subprocess_gateway import run_cli

from gateway.register.ledger import Register
from gateway.register.scope import RegisterScope
from gateway.register.summary import AGE_BANDS, Summary, summarise
from gateway.register.summary_formats import summary_csv, summary_text

pytestmark = pytest.mark.usefixtures("london")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return register_config(tmp_path)


@pytest.fixture
def reg(config: Path) -> Register:
    reg = open_register(config)
    seed(reg)
    return reg


EXPECTED = Summary(
    since=SINCE,
    until=UNTIL,
    sent=9,  # Q1-Q7, Q10, Q12: not the notice N8, not the refusal R9, not Q11 (August)
    refused=1,
    held_now=1,  # Q7
    without_consent=3,  # Q2, Q3, Q5 (Q6 was refused by its manager: never disclosed)
    incomplete=3,  # Q3 (reason), Q4 and Q12 (consent)
    inform_outstanding=2,  # Q2, Q5 (Q3's person was informed)
    by_month=[
        ("2026-09", {"obtained": 1, "refused": 0, "not-sought": 0, "not-recorded": 0}),
        ("2026-10", {"obtained": 0, "refused": 1, "not-sought": 1, "not-recorded": 0}),
        ("2026-11", {"obtained": 0, "refused": 1, "not-sought": 0, "not-recorded": 2}),
    ],
    by_organisation=[("Cafcass North", 4), ("Police", 1), ("school.example", 1)],
    holds_by_month=[("2026-09", 0, 0, None), ("2026-10", 0, 0, None), ("2026-11", 3, 2, 3.0)],
    incomplete_by_age=[(AGE_BANDS[0], 1), (AGE_BANDS[1], 1), (AGE_BANDS[2], 1), (AGE_BANDS[3], 0)],
    disclosures=6,  # Q1-Q5, Q12
)


def test_summary_counts_every_figure_exactly(reg: Register) -> None:
    assert summarise(reg, since=SINCE, until=UNTIL, now=NOW) == EXPECTED


def test_summary_without_a_period_starts_at_the_first_record(reg: Register) -> None:
    s = summarise(reg, since=None, until=None, now=NOW)
    assert [m for m, _ in s.by_month] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert s.by_month[0][1]["not-recorded"] == 1  # Q11
    assert (s.sent, s.incomplete, s.disclosures) == (10, 4, 7)
    assert s.incomplete_by_age[3] == ("over 90 days", 1)
    assert s.by_organisation[0] == ("Cafcass North", 5)


def test_summary_of_one_month_lists_only_that_month(reg: Register) -> None:
    s = summarise(reg, since=at("2026-10-01", 0), until=at("2026-11-01", 0), now=NOW)
    assert s.by_month == [
        ("2026-10", {"obtained": 0, "refused": 1, "not-sought": 1, "not-recorded": 0})
    ]
    assert (s.sent, s.refused, s.held_now, s.without_consent, s.inform_outstanding) == (
        2,
        0,
        0,
        2,
        1,
    )
    assert s.holds_by_month == [("2026-10", 0, 0, None)]


def test_summary_counts_only_what_the_scope_shows(reg: Register) -> None:
    bobs = RegisterScope("nobody@c4f.example", frozenset({"bob@c4f.example"}))
    s = summarise(reg, since=SINCE, until=UNTIL, now=NOW, scope=bobs)
    assert (s.sent, s.without_consent, s.inform_outstanding, s.incomplete) == (1, 1, 1, 0)
    assert s.by_organisation == [("Cafcass North", 1)]


def test_cli_summary_text_and_csv(reg: Register, config: Path) -> None:
    args = ("register", "report", "--summary", "--since", "2026-09-01", "--until", "2026-11-30")
    done = run_cli(*args, "--config", config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Register summary, 2026-09-01 to 2026-11-30 (local time)"
    figures = {line.rsplit(None, 1)[0].strip(): line.split()[-1] for line in lines[2:8]}
    assert figures == {
        "Accepted from staff:": "9",  # the held one included
        "Refused at the door:": "1",
        "Held for approval now:": "1",
        "Disclosures without consent:": "3",
        "Incomplete records:": "3",
        '"Person informed" outstanding:': "2",
    }
    assert "2026-11  0         1        0           2             3" in lines
    assert "Cafcass North   4" in lines
    assert "2026-11  3     2        3.0" in lines
    # The text is summary_text of the same figures (the age bands follow the real clock).
    expected = summarise(reg, since=SINCE, until=UNTIL, now=time.time())
    assert done.stdout == summary_text(expected)

    done = run_cli(*args, "--format", "csv", "--config", config)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["section", "item", "category", "value"]
    assert ["totals", "without_consent", "", "3"] in rows
    assert ["by_month", "2026-10", "not-sought", "1"] in rows
    assert ["by_organisation", "school.example", "", "1"] in rows
    assert ["holds_by_month", "2026-11", "median_hours", "3.0"] in rows
    assert done.stdout == summary_csv(expected).replace("\r\n", "\n")  # text mode reads \r\n
    assert len(rows) == 1 + 6 + 3 * 4 + 3 + 3 * 3 + 4


def test_cli_summary_refuses_a_bad_period(reg: Register, config: Path) -> None:
    done = run_cli("register", "report", "--summary", "--since", "2026-13-01", "--config", config)
    assert (done.returncode, done.stdout) == (2, "")
    assert "'2026-13-01' is not a date (YYYY-MM-DD)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_cli(
        "register",
        "report",
        "--summary",
        "--since",
        "2026-11-02",
        "--until",
        "2026-11-01",
        "--config",
        config,
    )
    assert done.returncode == 2 and "--until is before --since" in done.stderr
    done = run_cli("register", "report", "--family", "F-1", "--format", "csv", "--config", config)
    assert done.returncode == 2 and "go with --summary" in done.stderr


def test_cli_summary_help_explains_it() -> None:
    done = run_cli("register", "report", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--summary" in text and "time to decision" in text and "--format {text,csv}" in text
