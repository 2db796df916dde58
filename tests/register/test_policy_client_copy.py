"""Policy, "Client files": "All clients have the right to view their files. However, to
protect the safety and confidentiality of others, no clients will have access to any
information from their files that has been obtained from a third party ..."

``c4f-gateway register report --family REF --client-copy`` (its own process) on a real
register: entries flagged third-party (at send time, or by a manager's ``annotate
--third-party yes`` later) or safeguarding are withheld and counted, and none of their
subjects, reasons, recipients or attachment names are in the bytes; people's names and
addresses in the rest are replaced by their organisation or domain. The full report keeps
everything for managers. Both quote the clause they serve, word for word from the policy.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest
from support.register import DAY, T0, accepted, message, open_register, record, register_config
from support.subprocess_gateway import run_cli

from gateway.events import HoldEvent
from gateway.register import requests
from gateway.register.client_copy import CLAUSE, WITHHELD
from gateway.settings.policy import SHIPPED_FILE

FAMILY = "F-7"
# What only the withheld entries hold: none of it may reach a client.
THIRD_PARTY = (
    b"Statement of Lee Brown",
    b"Risk from Mr Brown",
    b"lee.brown@police.example",
    b"PC Lee Brown",
    b"Police Station",
    b"brown-statement.pdf",
)
SAFEGUARDING = (
    b"Referral about the children",
    b"duty@council.example",
    b"Duty Desk",
    b"Council Safeguarding",
    b"referral-form.pdf",
)
LATER = (b"Grandmother's view", b"nan@home.example", b"Nan Jones", b"nan-letter.pdf")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = register_config(tmp_path)
    reg = open_register(path)

    def sent(n: int, to: str, name: str, org: str, subject: str, file: str, **d: object) -> None:
        record(
            reg,
            accepted(
                f"Q{n}",
                T0 + n * DAY,
                rcpts=(to,),
                content=message(subject=subject, name=file),
                recipients={to: {"organisation": org, "display_name": name}},
                disclosure={"family": FAMILY, "external": True, **d},
            ),
        )

    sent(
        1,
        "j.smith@cafcass.example",
        "Jane Smith",
        "Cafcass North",
        "Contact report",
        "report.pdf",
        consent="obtained",
    )
    sent(
        2,
        "lee.brown@police.example",
        "PC Lee Brown",
        "Police Station",
        "Statement of Lee Brown",
        "brown-statement.pdf",
        consent="refused",
        reason="Risk from Mr Brown",
        third_party=True,
    )
    sent(
        3,
        "duty@council.example",
        "Duty Desk",
        "Council Safeguarding",
        "Referral about the children",
        "referral-form.pdf",
        consent="not-sought",
        reason="Risk of harm",
        safeguarding=True,
    )
    sent(
        4,
        "mum.friend@gmail.com",
        "Mary Friend",
        "",
        "Handover times",
        "times.txt",
        consent="obtained",
    )
    sent(
        5,
        "nan@home.example",
        "Nan Jones",
        "",
        "Grandmother's view",
        "nan-letter.pdf",
        consent="obtained",
    )
    requests.record(
        reg,
        requests.NewRequest(
            requester="Mr Brown's solicitor",
            via="letter",
            received="2023-11-20",
            nature="All contact notes",
            by="alice@c4f.example",
            family=FAMILY,
        ),
        date(2023, 12, 1),
    )
    return path


def report(config: Path, *extra: str) -> bytes:
    done = run_cli("register", "report", "--family", FAMILY, *extra, "--config", config)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout.encode()


def test_client_files_the_client_copy_withholds_third_party_entries_by_their_bytes(
    config: Path,
) -> None:
    # Entry 5 is about another person too: a manager flags it after it was sent.
    done = run_cli(
        "register", "annotate", "5", "--third-party", "yes", "--by", "max", "--config", config
    )
    assert (done.returncode, done.stdout) == (0, "Recorded follow-up 7 to entry 5.\n")

    copy = report(config, "--client-copy")
    for secret in (*THIRD_PARTY, *SAFEGUARDING, *LATER):
        assert secret not in copy, secret
    lines = copy.decode().splitlines()
    assert lines[0] == f"Information held about family {FAMILY}: client copy"
    assert lines[1].endswith("6 record(s), 3 entries withheld (information about another person).")
    assert lines[2] == CLAUSE
    assert [ln.split("  ", 1)[1] for ln in lines if WITHHELD in ln] == [
        f"entry {n}: {WITHHELD}" for n in (2, 3, 5)
    ]
    # People's names and addresses are replaced by their organisation, else the domain.
    for name in (b"Jane Smith", b"j.smith@", b"Mary Friend", b"mum.friend@", b"solicitor"):
        assert name not in copy, name
    assert "  To:       Cafcass North" in lines
    assert "  To:       gmail.com" in lines
    assert "  What:     Contact report" in lines and "  Files:    report.pdf" in lines
    assert "  From:     a person or agency (name withheld), by letter, received 2023-11-20" in (
        lines
    )

    # The full report stays for managers: everything, and the clause it serves.
    full = report(config)
    for kept in (*THIRD_PARTY, *SAFEGUARDING, *LATER, b"j.smith@cafcass.example"):
        if not kept.startswith((b"PC ", b"Duty Desk", b"Nan Jones")):  # names: not listed
            assert kept in full, kept
    assert requests.CLAUSE.encode() in full
    assert CLAUSE.encode() not in full and b"withheld" not in full

    # Released again, entry 5 comes back into the client's copy.
    done = run_cli(
        "register", "annotate", "5", "--third-party", "no", "--by", "max", "--config", config
    )
    assert done.returncode == 0
    again = report(config, "--client-copy")
    assert b"Grandmother's view" in again and b"nan-letter.pdf" in again
    assert b"nan@home.example" not in again and b"  To:       home.example\n" in again
    assert b"2 entries withheld" in again


def test_both_reports_quote_the_policy_word_for_word() -> None:
    policy = " ".join(SHIPPED_FILE.read_text(encoding="utf-8").split())
    for clause in (CLAUSE, requests.CLAUSE):
        quoted = clause.split(': "', 1)[1].rstrip('"')
        assert quoted in policy, quoted


def test_client_copy_goes_with_a_family(config: Path) -> None:
    done = run_cli("register", "report", "--summary", "--client-copy", "--config", config)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "c4f-gateway register: error: --client-copy goes with --family\n"


def test_client_files_only_the_parts_a_manager_marks_are_withheld(config: Path) -> None:
    def annotate(*parts: str) -> subprocess.CompletedProcess[str]:
        args = [x for p in parts for x in ("--third-party-field", p)]
        return run_cli("register", "annotate", "1", *args, "--by", "max", "--config", config)

    assert annotate("subject", "attachments").returncode == 0
    copy = report(config, "--client-copy")
    assert b"Contact report" not in copy and b"report.pdf" not in copy
    lines = copy.decode().splitlines()
    assert lines[1].endswith(
        "2 entries withheld (information about another person); parts of 1 other entry withheld."
    )
    entry = copy.decode().split("entry 1: sent\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert entry == [
        "  To:       Cafcass North",
        f"  What:     {WITHHELD}",
        f"  Files:    {WITHHELD}",
        "  Consent:  obtained",
        "  Informed: not recorded",
    ]
    shown = run_cli("register", "show", "1", "--config", config).stdout
    assert f"  {'Third-party:':<23}in part: attachments, subject withheld from a client copy" in (
        shown.splitlines()
    )
    assert b"Contact report" in report(config)  # the managers' report keeps it

    assert annotate("none").returncode == 0
    assert b"Contact report" in report(config, "--client-copy")
    wrong = annotate("none", "subject")
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "c4f-gateway register: error: --third-party-field none goes alone\n",
    )
    wrong = annotate("colour")
    assert wrong.returncode == 2 and "argument --third-party-field: invalid choice" in wrong.stderr


def test_client_files_child_protection_is_withheld_and_unsent_is_not_called_sent(
    config: Path,
) -> None:
    """A [child-protection] record is withheld like a safeguarding one (the person given the
    copy may be the one the concern is about); a message held for a line manager, or refused
    by one, was never sent, and neither report says it was."""
    reg = open_register(config)
    tagged = {"family": FAMILY, "external": True, "consent": "obtained"}
    for n, subject, extra in (
        (10, "Section 47 strategy meeting", {"child_protection": True}),
        (11, "Contact notes awaiting a manager", {}),
        (12, "Notes a manager stopped", {}),
    ):
        content = message(subject=subject, name=f"file{n}.pdf")
        event = accepted(f"Q{n}", T0 + n * DAY, content=content, disclosure={**tagged, **extra})
        record(reg, event)
    with reg.store.transaction() as conn:
        for qid in ("Q11", "Q12"):
            reg.hold(conn, HoldEvent(qid, T0 + 13 * DAY, "held", "", reasons=("r",)))
        reg.hold(conn, HoldEvent("Q12", T0 + 14 * DAY, "refused", "max", "not this"))
    seq = {r.entry.queue_id: r.seq for r in reg.records() if r.entry.queue_id}

    copy = report(config, "--client-copy").decode()
    assert "Section 47" not in copy and "file10.pdf" not in copy
    lines = [ln.split("  ", 1)[1] for ln in copy.splitlines() if "  entry " in ln]
    assert f"entry {seq['Q10']}: {WITHHELD}" in lines
    assert f"entry {seq['Q11']}: held for a line manager's approval (not sent)" in lines
    assert f"entry {seq['Q12']}: refused by a line manager (not sent)" in lines
    assert f"entry {seq['Q1']}: sent" in lines  # one that left
    full = report(config).decode()
    assert f"entry {seq['Q11']}: held for a line manager's approval (not sent)" in full
    assert f"entry {seq['Q12']}: refused by a line manager (not sent)" in full
