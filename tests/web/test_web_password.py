"""A changed password ends that person's console sessions (AUTH-5).

Policy, "Storage of information": kept in a secure place. A password is changed because
it may be known to someone else; a console session opened with the old one must not
outlive it. The change is made as an administrator makes it, with the command line run
as its own process against the same database the console serves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.pki import TestCA
from support.subprocess_gateway import run_cli
from support.web import ADMIN, MANAGER, STAFF, Site, make_site, signed_in

NEW_PASSWORD = "a new pass phrase nobody else has 77"


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


def test_auth5_password_change_ends_that_persons_console_sessions(site: Site) -> None:
    with site.client() as laptop, site.client() as phone, site.client() as other:
        signed_in(laptop, MANAGER)
        signed_in(phone, MANAGER)
        signed_in(other, ADMIN)
        with site.client() as staff:
            signed_in(staff, STAFF, landing="/held")
        assert laptop.get("/register", follow_redirects=False).status_code == 200

        done = run_cli(
            "staff",
            "passwd",
            MANAGER,
            "--password-stdin",
            "--config",
            site.settings.source,
            stdin=NEW_PASSWORD + "\n",
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"password changed for {MANAGER}; signed out of the console everywhere\n"
        )

        for client in (laptop, phone):
            reply = client.get("/register", follow_redirects=False)
            assert (reply.status_code, reply.headers.get("location")) == (303, "/signin")
        # Everyone else stays signed in.
        assert other.get("/register", follow_redirects=False).status_code == 200
    live = site.store.query("SELECT login FROM web_sessions ORDER BY login")
    assert [r["login"] for r in live] == [ADMIN, STAFF]


def test_auth5_removed_account_added_again_does_not_inherit_old_sessions(site: Site) -> None:
    with site.client() as laptop:
        signed_in(laptop, MANAGER)
        config = site.settings.source
        assert run_cli("staff", "remove", MANAGER, "--config", config).returncode == 0
        again = run_cli(
            "staff",
            "add",
            MANAGER,
            "--role",
            "manager",
            "--password-stdin",
            "--config",
            config,
            stdin=NEW_PASSWORD + "\n",
        )
        assert again.returncode == 0, again.stderr
        reply = laptop.get("/register", follow_redirects=False)
        assert (reply.status_code, reply.headers.get("location")) == (303, "/signin")
