"""``c4f-gateway contacts``: the admin's commands, run as the command line runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.contacts import contacts_config, contacts_keyring

from gateway.cli import main
from gateway.directory.contacts import ContactRepository
from gateway.register.ledger import Register
from gateway.settings.register import RegisterSettings
from gateway.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return contacts_config(tmp_path)


def _repo(config: Path) -> ContactRepository:
    store = Store(config.parent / "gateway.db")
    return ContactRepository(store, keyring=contacts_keyring(store))


def run(config: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["contacts", *argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def add(
    config: Path, capsys: pytest.CaptureFixture[str], address: str, *extra: str
) -> tuple[int, str, str]:
    return run(
        config,
        capsys,
        "add",
        address,
        "--name",
        "Jane Whitaker",
        "--org",
        "Cafcass",
        "--approved-by",
        "Sam Admin",
        "--verified",
        "phoned back on a known number",
        "--no-dns",
        *extra,
    )


def test_add_list_show_remove_history(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = add(config, capsys, "J.Whitaker@CAFCASS.gov.uk", "--role", "adviser")
    assert code == 0
    due = (datetime.now(UTC).date().replace(year=datetime.now(UTC).year + 1)).isoformat()
    assert out == f"added C-001 J.Whitaker@cafcass.gov.uk (review due {due})\n"
    assert add(config, capsys, "family-court.org.uk", "--domain")[0] == 0
    code, out, _ = run(config, capsys, "list")
    addresses, domains = out.split("Whole-domain entries")
    assert "Approved addresses (1)" in addresses and "C-001" in addresses
    assert "C-002" not in addresses
    assert "(1)" in domains and "C-002  family-court.org.uk" in domains
    code, out, _ = run(config, capsys, "show", "j.whitaker@cafcass.gov.uk")
    assert "reference:        C-001" in out
    assert "verified:         phoned back on a known number" in out
    assert "MX at approval:   not checked" in out
    code, out, _ = run(config, capsys, "remove", "C-001", "--by", "Kim")
    assert (code, out) == (0, "removed C-001 J.Whitaker@cafcass.gov.uk\n")
    code, out, _ = run(config, capsys, "history", "C-001")
    lines = out.splitlines()
    assert " C-001  add  by Sam Admin (os user " in lines[0]
    assert "    role: 'adviser'" in lines
    assert any(" C-001  remove  by Kim (os user " in line for line in lines)
    assert "    address: was 'J.Whitaker@cafcass.gov.uk'" in lines


def test_user_mistakes_exit_2_with_one_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = add(config, capsys, "FAX=+442079460000@council.gov.uk")
    assert code == 2
    assert err.startswith(
        "c4f-gateway contacts: error: FAX=+442079460000@council.gov.uk is a "
        "fax or telephone gateway address"
    )
    assert "fax routes cannot be approved" in err
    code, _, err = add(config, capsys, "records@[192.0.2.10]")
    assert (code, "--allow-unusual" in err) == (2, True)
    assert add(config, capsys, "records@[192.0.2.10]", "--allow-unusual")[0] == 0
    assert (
        run(config, capsys, "show", "C-099")[2] == "c4f-gateway contacts: error: no contact C-099\n"
    )
    code, _, err = run(config, capsys, "review", "--renew", "C-001")
    assert (code, err) == (
        2,
        "c4f-gateway contacts: error: say who makes the change with --by NAME\n",
    )
    code, _, err = add(config, capsys, "a@b.example", "--review-due", "2020-01-01")
    assert (code, "review date must be after" in err) == (2, True)


def test_soft_fax_sign_warns_until_attested(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = add(config, capsys, "team-fax@council.gov.uk")
    assert code == 0
    assert "warning: team-fax@council.gov.uk looks like a shared fax mailbox" in out
    assert "contacts review --not-fax C-001 --by NAME" in out
    code, out, _ = run(config, capsys, "review", "--not-fax", "C-001", "--by", "Kim")
    assert out == "attested C-001 as not a fax route\n"
    assert "not-fax-attested" in run(config, capsys, "list")[1]
    code, out, _ = add(config, capsys, "02079460000@surgery.nhs.uk", "--not-fax")
    assert "warning" not in out


def test_review_renews_and_lists_what_is_due(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).date()
    soon = (today + timedelta(days=10)).isoformat()
    add(
        config,
        capsys,
        "a@b.example",
        "--approved-on",
        (today - timedelta(days=355)).isoformat(),
        "--review-due",
        soon,
    )
    add(config, capsys, "c@d.example")
    _, out, _ = run(config, capsys, "review", "--no-dns")
    assert "Approvals lapsed or due within 30 days (1)" in out
    assert "C-001  a@b.example" in out and "C-002" not in out
    _, out, _ = run(config, capsys, "review", "--renew", "C-001", "--by", "Kim")
    assert out.startswith("renewed C-001 until ")
    assert "(0)" in run(config, capsys, "review", "--no-dns")[1]
    repo = _repo(config)
    renewed = repo.get(1)
    assert renewed is not None and renewed.approved_by == "Kim"
    assert [r["action"] for r in repo.history(1)] == ["add", "renew"]


def test_export_then_import_round_trips(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(config, capsys, "j.whitaker@cafcass.gov.uk", "--notes", "call first, then email")
    add(config, capsys, "family-court.org.uk", "--domain")
    out_file = tmp_path / "contacts.csv"
    code, out, _ = run(config, capsys, "export", str(out_file))
    assert (code, out) == (0, f"exported 2 contact(s) to {out_file}\n")
    assert out_file.stat().st_mode & 0o777 == 0o600
    other = tmp_path / "other"
    other.mkdir()
    other_config = other / "gateway.toml"
    other_config.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    Register.create_keys(RegisterSettings().resolved(other))
    code, out, _ = run(other_config, capsys, "import", str(out_file), "--by", "Kim")
    assert out.startswith("imported 2 new, 0 updated, 0 unchanged contact(s)\n")
    assert run(other_config, capsys, "export")[1].encode() == out_file.read_bytes()


def test_bad_import_reports_lines_and_adds_nothing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(config, capsys, "j.whitaker@cafcass.gov.uk")
    run(config, capsys, "export", str(tmp_path / "good.csv"))
    text = (tmp_path / "good.csv").read_text(encoding="utf-8")
    header, row = text.splitlines()[:2]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\r\n".join(
            [
                header,
                row.replace("j.whitaker@", "new.person@"),
                row.replace("j.whitaker@cafcass.gov.uk", "FAX=+441234@corp.example"),
                row.replace("j.whitaker@cafcass.gov.uk", "not an address"),
            ]
        )
        + "\r\n",
        encoding="utf-8",
    )
    code, _, err = run(config, capsys, "import", str(bad), "--by", "Kim")
    assert code == 2
    assert err.splitlines() == [
        f"{bad}: line 3, address: 'FAX=+441234@corp.example' is a fax or telephone gateway "
        "address (RFC 3191/3192 FAX=, VOICE=, AMIS=): fax routes cannot be approved",
        f"{bad}: line 4, address: 'not an address' is not valid: An email address must have "
        "an @-sign.",
        "c4f-gateway contacts: error: 2 bad row(s); nothing imported",
    ]
    assert "new.person" not in run(config, capsys, "list")[1]


def admin_trail(config: Path) -> list[tuple[str, str, dict[str, object]]]:
    """The register's admin trail as (actor, action, details)."""
    from gateway.register.criteria import Filters

    store = Store(config.parent / "gateway.db")
    try:
        register = Register.from_settings(store, RegisterSettings().resolved(config.parent))
        return [
            (r.data["actor"], r.data["action"], r.data["details"])
            for r in register.records(Filters(kinds=("admin",)))
        ]
    finally:
        store.close()


def test_requires_approval_mark_is_set_shown_changed_and_audited(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add(config, capsys, "j.whitaker@cafcass.gov.uk")[0] == 0
    assert add(config, capsys, "duty@council.example", "--requires-approval")[0] == 0
    _, out, _ = run(config, capsys, "list")
    [plain] = [ln for ln in out.splitlines() if ln.startswith("C-001")]
    [marked] = [ln for ln in out.splitlines() if ln.startswith("C-002")]
    assert plain.endswith("  ok") and marked.endswith("  ok,requires-approval")
    _, out, _ = run(config, capsys, "show", "C-002")
    assert (
        "manager approval: required: messages to this contact are held until a line manager "
        "approves them\n" in out
    )
    assert "manager approval: not required\n" in run(config, capsys, "show", "C-001")[1]

    code, out, _ = run(
        config, capsys, "approval", "j.whitaker@cafcass.gov.uk", "--required", "--by", "Kim"
    )
    assert (code, out) == (
        0,
        "C-001 j.whitaker@cafcass.gov.uk requires approval: messages to this contact are held "
        "until a line manager approves them\n",
    )
    code, out, _ = run(config, capsys, "approval", "C-2", "--not-required", "--by", "Kim")
    assert (code, out) == (
        0,
        "C-002 duty@council.example does not require line-manager approval\n",
    )
    code, out, _ = run(config, capsys, "approval", "C-002", "--not-required", "--by", "Kim")
    assert (code, out) == (
        0,
        "C-002 duty@council.example does not require line-manager approval (unchanged)\n",
    )

    repo = _repo(config)
    assert [(c.ref, c.requires_approval) for c in repo.all()] == [("C-001", True), ("C-002", False)]
    assert [(r["action"], r["actor"]) for r in repo.history(1)] == [
        ("add", "Sam Admin"),
        ("requires-approval", "Kim"),
    ]
    assert len(repo.history(2)) == 2  # the unchanged call wrote nothing
    _, out, _ = run(config, capsys, "history", "C-001")
    assert "    requires_approval: False -> True" in out.splitlines()
    changes = [
        (actor, d)
        for actor, action, d in admin_trail(config)
        if action == "contact requires-approval"
    ]
    assert [(actor, d["contact_id"]) for actor, d in changes] == [("Kim", 1), ("Kim", 2)]
    before, after = changes[0][1]["before"], changes[0][1]["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert (before["requires_approval"], after["requires_approval"]) == (False, True)


def test_requires_approval_mistakes_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(config, capsys, "j.whitaker@cafcass.gov.uk")
    code, out, err = run(config, capsys, "approval", "C-099", "--required", "--by", "Kim")
    assert (code, out, err) == (2, "", "c4f-gateway contacts: error: no contact C-099\n")
    code, _, err = run(config, capsys, "approval", "nobody@x.example", "--required", "--by", "Kim")
    assert (code, err) == (2, "c4f-gateway contacts: error: no contact nobody@x.example\n")
    with pytest.raises(SystemExit) as exit_:
        run(config, capsys, "approval", "C-001", "--by", "Kim")  # neither --required nor not
    assert exit_.value.code == 2
    assert "one of the arguments --required --not-required is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run(config, capsys, "approval", "C-001", "--required", "--not-required", "--by", "Kim")
    assert exit_.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run(config, capsys, "approval", "C-001", "--required")  # who makes the change?
    assert exit_.value.code == 2
    capsys.readouterr()
    repo = _repo(config)
    assert [c.requires_approval for c in repo.all()] == [False]
    assert len(repo.history(1)) == 1


def test_requires_approval_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["contacts", "approval", "--help"], ["contacts", "add", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "messages to this contact are held until a line manager approves them" in out
