"""Policy, "Storage of information": "Disposed of after three years unless a safeguarding
or child protection issue has arisen or anybody has been injured whilst using the centre."

A retention hold has a category, a reason, who set it and a review date; a family hold
covers every record with that family reference, tagged or linked later; purge says what
it kept and why; holds past their review date are listed.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from support.harness import RunningGateway, message
from support.register import (
    DAY,
    T0,
    Clock,
    accepted,
    make_register,
    open_register,
    record,
    register_config,
)
from support.subprocess_gateway import run_cli
from support.upstream import Upstream
from support.web import add_account

from gateway.register.criteria import Filters
from gateway.register.family_hold import hold_family, release_family
from gateway.register.fields import RegisterError
from gateway.register.ledger import Register
from gateway.register.purge import purge
from gateway.register.retention import default_review_on
from gateway.settings.register import register_settings
from gateway.store import Store

StartGateway = Callable[..., Awaitable[RunningGateway]]
THREE_YEARS = 1095 * DAY
STAFF = "alice@c4f.example"
CONTACT = "j.smith@cafcass.example"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return register_config(tmp_path)


def _disc(**kw: object) -> dict[str, object]:
    return {"consent": "obtained", "external": True, **kw}


def _sealed(reg: Register) -> dict[int, bool]:
    """Each entry: is its sealed data still there (False: crypto-shredded)?"""
    rows = reg.store.query(
        "SELECT seq, sealed IS NOT NULL AND entry_key IS NOT NULL AS kept FROM register"
    )
    return {r["seq"]: bool(r["kept"]) for r in rows}


def test_a_child_protection_family_hold_keeps_its_untagged_records_through_a_purge(
    tmp_path: Path,
) -> None:
    clock = Clock()
    reg = make_register(tmp_path, clock)
    record(reg, accepted("FAM", T0, disclosure=_disc(family="F-9")))  # 1: untagged, F-9
    record(reg, accepted("OTHER", T0, disclosure=_disc(family="F-10")))  # 2: no hold
    record(reg, accepted("LATER", T0, disclosure=_disc()))  # 3: linked to F-9 below
    clock.now = T0 + DAY
    hold = hold_family(
        reg, "F-9", actor="mona", category="child-protection", reason="Section 47 enquiry"
    )  # 4
    clock.now = T0 + 2 * DAY
    reg.annotate(3, "mona", family="F-9")  # 5: linked after the hold was placed

    clock.now = T0 + 3 * THREE_YEARS / 3 + 10 * DAY  # three years later
    result = purge(reg, actor="serve")
    assert result.records == [2]
    assert result.kept_on_hold == [1, 3, 4]
    assert result.kept_why == {
        f"child-protection, family hold (entry {hold})": [1, 3],
        "child-protection, own hold": [4],
    }
    sealed = _sealed(reg)
    assert (sealed[1], sealed[3], sealed[5], sealed[4]) == (True, True, True, True)
    assert sealed[2] is False  # the unheld record's data is destroyed
    kept = reg.record(1)
    assert kept is not None
    assert kept.data["recipients"][0]["address"] == "j.smith@cafcass.example"
    assert kept.hold is not None
    assert (kept.hold.category, kept.hold.reason, kept.hold.by) == (
        "child-protection",
        "Section 47 enquiry",
        "mona",
    )
    gone = reg.record(2)
    assert gone is not None
    assert (gone.purged, gone.data) == (True, {})

    # Released, the family's records go at the next purge; the hold entry itself stays
    # until it is three years old too.
    release_family(reg, "F-9", actor="mona", reason="Enquiry closed, no further action")
    again = purge(reg, actor="serve")
    assert again.records == [1, 3, 4]
    assert not any(_sealed(reg)[s] for s in (1, 3, 4, 5))


def test_family_hold_needs_a_category_reason_and_a_future_review(tmp_path: Path) -> None:
    reg = make_register(tmp_path, Clock())
    with pytest.raises(RegisterError, match="category must be one of safeguarding"):
        hold_family(reg, "F-1", actor="m", category="injured", reason="x")
    with pytest.raises(RegisterError, match="needs a reason"):
        hold_family(reg, "F-1", actor="m", category="injury", reason="  ")
    with pytest.raises(RegisterError, match="must be after today"):
        hold_family(reg, "F-1", actor="m", category="legal", reason="x", review_on="2023-11-01")
    with pytest.raises(RegisterError, match="family F-1 has no family hold standing"):
        release_family(reg, "F-1", actor="m", reason="x")
    assert reg.records(Filters(kinds=("family-hold",))) == []


def test_a_tag_sets_the_category_and_an_annotation_sets_reason_and_review(tmp_path: Path) -> None:
    clock = Clock()
    reg = make_register(tmp_path, clock)
    record(reg, accepted("INJ", T0, disclosure=_disc(injury=True)))  # 1
    record(reg, accepted("CP", T0, disclosure=_disc(child_protection=True, safeguarding=True)))
    record(reg, accepted("SAFE", T0, disclosure=_disc(safeguarding=True)))  # 3
    record(reg, accepted("NONE", T0, disclosure=_disc()))  # 4
    reg.annotate(
        4,
        "mona",
        hold=True,
        hold_category="legal",
        hold_reason="Solicitor's letter",
        hold_review_on="2024-03-01",
    )
    holds = {r.entry.queue_id: r.hold for r in reg.records()}
    assert {q: (h.category if h else None) for q, h in holds.items()} == {
        "INJ": "injury",
        "CP": "child-protection",
        "SAFE": "safeguarding",
        "NONE": "legal",
    }
    inj = holds["INJ"]
    assert inj is not None
    assert (inj.reason, inj.by, inj.review_on) == (
        "tagged [injury] when sent",
        "alice@c4f.example",
        "2024-11-14",  # a year after it was set
    )
    legal = holds["NONE"]
    assert legal is not None
    assert (legal.reason, legal.by, legal.review_on) == ("Solicitor's letter", "mona", "2024-03-01")

    # Past its review date (2024-03-01) only the legal hold is listed; a year on, all.
    clock.now = T0 + 120 * DAY
    due = reg.records(Filters(hold_review_due=True))
    assert [r.entry.queue_id for r in due] == ["NONE"]
    clock.now = T0 + 366 * DAY
    assert len(reg.records(Filters(hold_review_due=True))) == 4
    # Released with a reason, it is no longer kept or listed.
    reg.annotate(4, "mona", hold=False, hold_reason="Matter settled")
    assert [r.seq for r in reg.records(Filters(retention_hold=True))] == [1, 2, 3]


async def test_an_injury_tag_sent_through_the_gateway_sets_the_category(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    gw = await start_gateway(
        upstream=upstream,
        folder=tmp_path / "gw",
        config={"pipeline": {"filters": ["sender", "disclosure"]}},
    )
    gw.add_staff(STAFF)
    subject = "[consent:obtained] [family:F-3] [injury] Accident report"
    errors, _ = await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    assert errors == {}
    await upstream.wait_for(1)
    shown = run_cli("register", "show", "1", "--config", gw.config_path)
    assert shown.returncode == 0, shown.stderr
    today = time.strftime("%Y-%m-%d")
    year_on = f"{int(today[:4]) + 1}{today[4:]}".replace("-02-29", "-02-28")
    assert (
        f"  Retention hold:        injury, own hold: tagged [injury] when sent (set by {STAFF} "
        f"on {today}; review on {year_on})\n"
    ) in shown.stdout
    exported = run_cli("register", "export", "--config", gw.config_path)
    [row] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert (row["retention_hold"], row["retention_category"], row["retention_by"]) == (
        "yes",
        "injury",
        STAFF,
    )
    assert row["retention_reason"] == "tagged [injury] when sent"


def test_cli_family_hold_purge_report_and_review_list(config: Path) -> None:
    old = time.time() - 1100 * DAY  # past the three years
    reg = open_register(config, clock=lambda: old)
    record(reg, accepted("KEEP", old, disclosure=_disc(family="F-9")))  # 1
    record(reg, accepted("GONE", old, disclosure=_disc(family="F-10")))  # 2
    record(reg, accepted("HURT", old, disclosure=_disc(injury=True)))  # 3
    # A family hold placed back then, its review date (a year later) long past.
    hold_family(reg, "F-9", actor="mona", category="child-protection", reason="S47")  # 4
    add_account(reg.store, "mona", "manager")

    missing = run_cli(
        "register", "hold-family", "F-8", "--category", "legal", "--by", "mona", "--config", config
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("the following arguments are required: --reason")

    exported = run_cli("register", "export", "--hold-review-due", "--config", config)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["entry"], r["decision"], r["retention_category"]) for r in rows] == [
        ("3", "accepted", "injury"),
        ("4", "family hold", "child-protection"),
    ]
    assert (rows[1]["family"], rows[1]["retention_by"], rows[1]["retention_reason"]) == (
        "F-9",
        "mona",
        "S47",
    )
    review = run_cli("register", "list", "--hold-review-due", "--config", config)
    assert review.returncode == 0, review.stderr
    rows = [line.split()[0] for line in review.stdout.splitlines()[2:-1]]
    assert rows == ["3", "4"]
    assert "retention hold: child-protection (own hold)" in review.stdout

    done = run_cli("register", "purge", "--by", "admin", "--config", config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Purged 1 record(s) (1 entries) older than" in done.stdout
    assert "Kept 3 record(s) under a retention hold: 1, 3, 4" in lines
    assert "  child-protection, family hold (entry 4): 1 record(s): 1" in lines
    assert "  child-protection, own hold: 1 record(s): 4" in lines
    assert "  injury, own hold: 1 record(s): 3" in lines
    sealed = _sealed(reg)
    assert (sealed[1], sealed[2], sealed[3], sealed[4]) == (True, False, True, True)

    held = run_cli(
        "register",
        "hold-family",
        "F-10",
        "--category",
        "legal",
        "--reason",
        "Court order",
        "--by",
        "mona",
        "--config",
        config,
    )
    assert held.returncode == 0, held.stderr
    assert held.stdout.splitlines()[-1] == "Family F-10 is on a retention hold (legal): entry 6."
    released = run_cli(
        "register",
        "release-family",
        "F-9",
        "--reason",
        "Closed",
        "--by",
        "mona",
        "--config",
        config,
    )
    assert released.returncode == 0, released.stderr
    assert released.stdout.splitlines()[-1] == "Released the retention hold on family F-9: entry 7."
    shown = run_cli("register", "show", "4", "--config", config)
    assert "  Status:                released\n" in shown.stdout
    assert "family hold released by mona: Closed" in shown.stdout


@pytest.mark.parametrize("command", ["hold-family", "release-family"])
def test_a_family_hold_is_set_or_released_only_by_a_staff_account(
    config: Path, command: str
) -> None:
    reg = open_register(config)
    add_account(reg.store, "mona@c4f.example", "manager")
    hold_family(reg, "F-9", actor="mona@c4f.example", category="legal", reason="Court order")
    before = reg.store.query("SELECT COUNT(*) AS n FROM register")[0]["n"]
    options = ["--category", "legal"] if command == "hold-family" else []
    by_nobody = run_cli(
        "register",
        command,
        "F-9",
        *options,
        "--reason",
        "Closed",
        "--by",
        "nobody@c4f.example",
        "--config",
        config,
    )
    assert (by_nobody.returncode, by_nobody.stdout) == (2, "")
    assert by_nobody.stderr == (
        "c4f-gateway register: error: --by: nobody@c4f.example is not a staff account "
        "(see `staff list`)\n"
    )
    assert reg.store.query("SELECT COUNT(*) AS n FROM register")[0]["n"] == before
    # A staff login is recorded as the directory keeps it, whatever its case.
    by_mona = run_cli(
        "register",
        command,
        "F-9",
        *options,
        "--reason",
        "Closed",
        "--by",
        "Mona@C4F.example",
        "--config",
        config,
    )
    assert by_mona.returncode == 0, by_mona.stderr
    shown = run_cli("register", "show", str(before + 1), "--config", config)
    assert "mona@c4f.example" in shown.stdout and "Mona@" not in shown.stdout


async def test_a_family_hold_past_its_review_is_in_the_admins_daily_reminder(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(folder=tmp_path / "gw")  # delivers into a Maildir
    gw.add_staff("root@c4f.example", role="admin")
    gw.add_staff("mona@c4f.example", role="manager")
    year_ago = time.time() - 400 * DAY
    rs = register_settings(gw.settings)
    past = Register.from_settings(Store(gw.settings.storage.database), rs, clock=lambda: year_ago)
    seq = hold_family(past, "F-9", actor="mona", category="child-protection", reason="S47")
    duties = gw.gateway.duties
    assert duties is not None
    assert await gw.gateway.store.run(duties.remind, time.time()) == 1  # the admin
    gw.gateway.worker.wake()
    [mail] = await gw.wait_maildir(1)
    text = mail.decode()
    assert "To: root@c4f.example" in text
    assert "Subject: Reminder: register duties: 1 retention hold(s) to review" in text
    review_on = default_review_on(year_ago)
    assert (
        f"  entry {seq}  family hold, child-protection, set by mona, review on {review_on}" in text
    )
    assert "F-9" not in text and "S47" not in text


def test_a_newer_family_hold_supersedes_and_a_release_ends_both(tmp_path: Path) -> None:
    clock = Clock()
    reg = make_register(tmp_path, clock)
    record(reg, accepted("FAM", T0, disclosure=_disc(family="F-9")))  # 1
    first = hold_family(reg, "F-9", actor="mona", category="injury", reason="Fall")  # 2
    clock.now = T0 + 300 * DAY  # reviewed: renewed as child protection
    second = hold_family(reg, "F-9", actor="mona", category="child-protection", reason="S47")
    by_seq = {r.seq: r for r in reg.records(Filters(kinds=("accepted", "family-hold")))}
    assert by_seq[first].status == f"superseded by entry {second}"
    assert by_seq[first].own_hold is None
    kept = by_seq[1].hold
    assert kept is not None
    assert (kept.category, kept.family_hold) == ("child-protection", second)
    release_family(reg, "F-9", actor="mona", reason="Closed")
    released = reg.records(Filters(kinds=("accepted", "family-hold")))
    assert [r.retention_hold for r in released] == [False, False, False]
    # Each hold entry has its own release follow-up (read alone, each says released).
    assert [[f.data["action"] for f in r.followups] for r in released[1:]] == [
        ["release"],
        ["release"],
    ]
