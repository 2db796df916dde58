"""`c4f-gateway register ...`: what a line manager and an admin see and can do."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.register import DAY, accepted, open_register, raw, record, refused, register_config

from gateway.cli import COMMANDS, CLIError
from gateway.cli import register as cli_register
from gateway.register.export import CSV_COLUMNS, flat
from gateway.register.ledger import Register
from gateway.settings.register import RegisterSettings

JULY = datetime(2024, 7, 1, 12, 0, tzinfo=UTC).timestamp()  # 13:00 in London (BST)
CONTACT = {
    "j.smith@cafcass.example": {"organisation": "Cafcass North", "display_name": "Jane Smith"}
}


pytestmark = pytest.mark.usefixtures("london")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return register_config(tmp_path)


@pytest.fixture
def reg(config: Path) -> Register:
    reg = open_register(config)
    record(
        reg,
        accepted(
            "Q1",
            JULY,
            recipients=CONTACT,
            disclosure={
                "consent": "not-sought",
                "reason": '=HYPERLINK("http://evil.example")',
                "family": "F-1042",
                "external": True,
            },
        ),
    )
    record(reg, accepted("Q2", JULY + DAY, rcpts=("x@other.example",)))
    record(reg, refused("Q3", JULY + 2 * DAY))
    return reg


def run(config: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="c4f-gateway")
    cli_register.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["register", *argv, "--config", str(config)])
    code: int = args.func(args)
    return code


def test_register_is_a_gateway_command() -> None:
    assert "register" in COMMANDS


def test_list_is_aligned_in_local_time_with_words(
    reg: Register, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "Entry",
        "When",
        "Staff",
        "To",
        "Organisation",
        "Consent",
        "Family",
        "Status",
        "Notes",
    ]
    assert lines[1].startswith("-----")
    row1, row2, row3 = lines[2:5]
    assert row1.startswith("1      2024-07-01 13:00  alice@c4f.example  j.smith@cafcass.example")
    assert row2.startswith("2      2024-07-02 13:00  alice@c4f.example  x@other.example")
    for column in ("When", "Staff", "To", "Status"):  # every row starts it at the same place
        at = lines[0].index(column)
        assert all(line[at - 1] == " " and line[at] != " " for line in (row1, row2, row3))
    assert "not sought" in row1
    assert "Cafcass North" in row1
    assert "incomplete: consent missing" in row2
    assert "refused" in row3
    assert lines[-1] == "3 entries; times are local."


def test_list_filters(reg: Register, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def entries(*argv: str) -> list[str]:
        assert run(config, "list", *argv) == 0
        out = capsys.readouterr().out.splitlines()
        return [line.split()[0] for line in out[2:-1]] if len(out) > 1 else []

    assert entries("--family", "F-1042") == ["1"]
    assert entries("--incomplete") == ["2"]
    assert entries("--refused") == ["3"]
    assert entries("--since", "2024-07-02", "--until", "2024-07-02") == ["2"]
    assert entries("--organisation", "cafcass") == ["1"]
    assert entries("--retention-hold") == []
    assert entries("--held-for-approval") == []
    with pytest.raises(CLIError, match="is not a date"):
        run(config, "list", "--since", "1 July")


def test_show_has_the_entry_and_its_follow_ups(
    reg: Register, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            config,
            "annotate",
            "1",
            "--informed",
            "yes",
            "--on",
            "2024-07-05",
            "--by",
            "manager@c4f.example",
        )
        == 0
    )
    assert capsys.readouterr().out == "Recorded follow-up 4 to entry 1.\n"
    assert run(config, "show", "1") == 0
    out = capsys.readouterr().out
    assert out.startswith("Entry 1: message sent\n")
    assert "  When:                  2024-07-01 13:00:00 (local time)\n" in out
    assert "  Recipients:            j.smith@cafcass.example (Jane Smith, Cafcass North)\n" in out
    assert "  Consent:               not sought\n" in out
    assert "  Person informed:       yes on 2024-07-05\n" in out
    assert "\nFollow-ups:\n  20" in out
    assert "follow-up by manager@c4f.example: person informed: yes; informed on: 2024-07-05" in out
    with pytest.raises(CLIError, match="no register entry 99"):
        run(config, "show", "99")


def test_csv_export_round_trips_and_defuses_formulas(
    reg: Register, config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export.csv"
    assert run(config, "export", "--format", "csv", "--output", str(out)) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    text = out.read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["entry"] for r in rows] == ["1", "2", "3"]
    assert tuple(rows[0]) == CSV_COLUMNS
    # A formula stays text in a spreadsheet: the leading apostrophe.
    assert rows[0]["reason"] == '\'=HYPERLINK("http://evil.example")'
    for row, rec in zip(rows, reg.records(), strict=True):
        undone = {k: v[1:] if v.startswith("'") else v for k, v in row.items()}
        assert undone == flat(rec)


def test_json_export(reg: Register, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "export", "--format", "json", "--refused") == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert (doc["entry"], doc["decision"], doc["details"]["reference"]) == (3, "refused", "R-1A2B")


def test_family_report(reg: Register, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "report", "--family", "F-1042") == 0
    out = capsys.readouterr().out
    assert out.startswith("Disclosures about family F-1042\n")
    assert "1 record(s)" in out
    assert "2024-07-01 13:00  entry 1: sent" in out
    assert "  To:       j.smith@cafcass.example (Cafcass North)" in out
    assert "  Consent:  not sought (reason: " in out
    assert "entry 2" not in out


def test_annotate_hold_and_bad_input(reg: Register, config: Path) -> None:
    hold = ("--retention-hold", "injury", "--reason", "Child hurt at handover")
    assert run(config, "annotate", "2", *hold, "--concern", "Injury at handover") == 0
    [r] = [r for r in reg.records() if r.seq == 2]
    assert (r.retention_hold, r.concerns[0]["text"]) == (True, "Injury at handover")
    assert r.hold is not None
    assert (r.hold.category, r.hold.reason, r.reason) == ("injury", "Child hurt at handover", "")
    with pytest.raises(CLIError, match="is not a date"):
        run(config, "annotate", "2", "--informed", "yes", "--on", "yesterday")
    with pytest.raises(CLIError, match=r"^a retention hold needs a category and a reason$"):
        run(config, "annotate", "2", "--retention-hold", "legal")
    with pytest.raises(SystemExit):
        run(config, "annotate", "2", "--retention-hold", "legal", "--release-retention-hold")
    with pytest.raises(SystemExit):  # a category is required: no generic hold any more
        run(config, "annotate", "2", "--retention-hold", "--reason", "x")


def test_verify_ok_then_names_the_tampered_entry(
    reg: Register, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "checkpoint") == 0
    assert capsys.readouterr().out.startswith("Checkpoint written: ")
    assert run(config, "verify") == 0
    assert capsys.readouterr().out == (
        "Register verified: 3 entries, chain intact, 1 checkpoint(s) agree.\n"
    )
    raw(tmp_path).execute("UPDATE register SET size = size + 1 WHERE seq = 2")
    assert run(config, "verify") == 1
    assert capsys.readouterr().out.startswith(
        "REGISTER FAILED VERIFICATION: entry 2 was altered or inserted"
    )


def test_verify_needs_no_master_key(reg: Register, config: Path) -> None:
    assert run(config, "checkpoint") == 0
    RegisterSettings().resolved(config.parent).key_file.unlink()
    assert run(config, "verify") == 0


def test_purge_dry_run_then_purge(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = open_register(config)
    old = time.time() - 1100 * DAY
    record(reg, accepted("OLD", old))
    record(reg, accepted("HELD", old, disclosure={"consent": "obtained", "safeguarding": True}))
    assert run(config, "purge", "--dry-run") == 0
    assert capsys.readouterr().out.startswith("Would purge 1 record(s) (1 entries) older than")
    assert run(config, "purge", "--by", "admin") == 0
    out = capsys.readouterr().out
    assert "Purged 1 record(s) (1 entries)" in out
    assert "Kept 1 record(s) under a retention hold: 2" in out
    assert "The purge is recorded as entry 3." in out
    with pytest.raises(CLIError, match="entry 2 is under a retention hold"):
        run(config, "purge", "--entry", "2")
    assert run(config, "list", "--admin") == 0
    admin = capsys.readouterr().out
    assert "purged 1 entries" in admin
    assert "purge refused" in admin


def test_missing_database_is_a_clear_error(config: Path) -> None:
    with pytest.raises(
        CLIError, match=r"storage.database: no such database \(run `c4f-gateway init` first\)"
    ):
        run(config, "list")


def test_through_the_gateway_command(
    reg: Register, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    assert main(["register", "checkpoint", "--config", str(config)]) == 0
    assert main(["register", "verify", "--config", str(config)]) == 0
    assert "Register verified: 3 entries" in capsys.readouterr().out
    assert main(["register", "show", "42", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        "c4f-gateway register: error: there is no register entry 42\n"
    )
