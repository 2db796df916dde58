"""Second factor self-service: the one-time enrolment link (`c4f-gateway web enrol-link`),
its password and code steps, a used or expired link, and an admin's reset (lost device)."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.subprocess_gateway import run_cli
from support.web import ADMIN, MANAGER, PASSWORD, STAFF, Site, admin_actions, make_site, sign_in

from gateway.cli import main
from gateway.settings.web import WebSettings
from gateway.web.pages_enrol import ENROL_COOKIE
from gateway.web.totp import LINK_TTL

LINK = re.compile(r"^  (\S+)/enrol/([A-Za-z0-9_-]{40,})$", re.MULTILINE)


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca, web=WebSettings())  # TOTP for managers and admins


def issue(site: Site, login: str, *options: str) -> str:
    """`web enrol-link LOGIN --config F` as a user runs it; returns the link's path."""
    done = run_cli("web", "enrol-link", login, "--config", site.settings.source, *options)
    assert done.returncode == 0, done.stderr
    found = LINK.search(done.stdout)
    assert found is not None, done.stdout
    assert "valid 24 hours" in done.stdout
    return f"/enrol/{found.group(2)}"


def key_of(html: str) -> str:
    found = re.search(r'<code id="enrol-key">([A-Z2-7 ]+)</code>', html)
    assert found is not None, html
    return found.group(1).replace(" ", "")


def password_step(client: TestClient, path: str, password: str = PASSWORD) -> str:
    """The password step; returns the key page's HTML."""
    reply = client.post(path, data={"password": password}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == path, reply.text
    page = client.get(path)
    assert page.status_code == 200 and "<svg" in page.text
    return page.text


def test_enrol_through_the_link(site: Site) -> None:
    path = issue(site, MANAGER)
    # Only a keyed hash of the token is stored.
    token = path.rsplit("/", 1)[1]
    assert token.encode() not in site.settings.storage.database.read_bytes()
    with site.client() as client:
        first = client.get(path)
        assert first.status_code == 200 and MANAGER in first.text
        assert "<svg" not in first.text  # nothing is shown before the password
        assert 'id="verify-status"' not in first.text  # nor the register's state
        wrong = client.post(path, data={"password": "not-it"}, follow_redirects=False)
        assert wrong.status_code == 401 and "Wrong password." in wrong.text
        assert ENROL_COOKIE not in client.cookies
        html = password_step(client, path)
        secret = key_of(html)
        assert 'class="segno"' in html and "<script" not in html
        # Pending until a code confirms it: a password alone still cannot sign in.
        assert not site.console.totp.enrolled(MANAGER)
        with site.client() as other:
            refused = sign_in(other, MANAGER)
            assert refused.status_code == 403 and "c4f-gateway web enrol-link" in refused.text
        bad = client.post(f"{path}/confirm", data={"code": "000000"})
        assert bad.status_code == 401 and "That code is wrong" in bad.text
        assert key_of(bad.text) == secret  # the same key is shown again
        code = pyotp.TOTP(secret).at(site.clock())
        done = client.post(f"{path}/confirm", data={"code": code})
        assert done.status_code == 200 and "is active" in done.text, done.text
    assert site.console.totp.enrolled(MANAGER)
    with site.client() as client:
        # The confirming code is used up; the next one signs in.
        assert sign_in(client, MANAGER, secret=secret, at=site.clock()).status_code == 401
        site.clock.advance(30)
        reply = sign_in(client, MANAGER, secret=secret, at=site.clock())
        assert reply.headers["location"] == "/register"
    actions = [(a, b, d) for a, b, d in admin_actions(site)]
    assert (MANAGER, "totp enrolled", {"login": MANAGER, "via": "link"}) in actions
    assert any(b == "totp enrolment link" and d == {"login": MANAGER} for _, b, d in actions)
    failed = [d for a, b, d in actions if b == "totp enrolment failed"]
    assert failed == [{"client": "testclient", "step": "password"}]


def test_a_used_link_is_refused(site: Site) -> None:
    path = issue(site, STAFF)
    with site.client() as client:
        secret = key_of(password_step(client, path))
        code = pyotp.TOTP(secret).at(site.clock())
        assert client.post(f"{path}/confirm", data={"code": code}).status_code == 200
        again = client.get(path)
        assert again.status_code == 410 and "unknown, used or expired" in again.text
        assert client.post(path, data={"password": PASSWORD}).status_code == 410
        assert client.post(f"{path}/confirm", data={"code": code}).status_code == 410
    (row,) = site.store.query("SELECT used, secret, proof FROM web_totp_links")
    assert row["used"] is not None and row["secret"] is None and row["proof"] is None


def test_an_expired_or_replaced_link_is_refused(site: Site) -> None:
    old = issue(site, MANAGER)
    path = issue(site, MANAGER, "--by", "it-admin")  # replaces the first
    with site.client() as client:
        assert client.get(old).status_code == 410
        secret = key_of(password_step(client, path))
        site.clock.advance(LINK_TTL + 120)  # the CLI issued it on the real clock
        code = pyotp.TOTP(secret).at(site.clock())
        late = client.post(f"{path}/confirm", data={"code": code})
        assert late.status_code == 410 and "unknown, used or expired" in late.text
        assert client.get(path).status_code == 410
        assert client.get("/enrol/not-a-token").status_code == 410
    assert not site.console.totp.enrolled(MANAGER)
    assert ("it-admin", "totp enrolment link") in [(a, b) for a, b, _ in admin_actions(site)]
    # The next link issued forgets the expired one (and its sealed pending key).
    site.console.totp.issue_link(ADMIN)
    assert site.store.query("SELECT login FROM web_totp_links")[0]["login"] == ADMIN
    assert len(site.store.query("SELECT 1 FROM web_totp_links")) == 1


def test_the_key_page_needs_the_browser_that_gave_the_password(site: Site) -> None:
    path = issue(site, MANAGER)
    with site.client() as client:
        password_step(client, path)
    with site.client() as other:  # the link alone, without the password step's cookie
        page = other.get(path)
        assert page.status_code == 200 and "<svg" not in page.text
        assert 'id="password"' in page.text
        reply = other.post(f"{path}/confirm", data={"code": "123456"}, follow_redirects=False)
        assert reply.status_code == 303 and reply.headers["location"] == path


def test_password_step_is_throttled(site: Site) -> None:
    path = issue(site, ADMIN)
    limit = site.settings.auth.max_failures_per_client
    with site.client() as client:
        for _ in range(limit):
            client.post(path, data={"password": "wrong"})
        reply = client.post(path, data={"password": PASSWORD})
        assert reply.status_code == 429 and ENROL_COOKIE not in client.cookies


def test_reset_for_a_lost_device_is_recorded(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(site.settings.source)
    site.console.totp.enrol(MANAGER)
    # Options before or after the login.
    assert main(["web", "totp-reset", "--config", config, "--by", "it-admin", MANAGER]) == 0
    assert "second factor removed for " + MANAGER in capsys.readouterr().out
    assert not site.console.totp.enrolled(MANAGER)
    assert main(["web", "totp-reset", MANAGER, "--config", config]) == 2
    assert "has no second factor" in capsys.readouterr().err
    details = [d for a, b, d in admin_actions(site) if (a, b) == ("it-admin", "totp removed")]
    assert details == [{"login": MANAGER, "how": "totp-reset"}]


def test_link_cli_errors_and_argument_order(site: Site) -> None:
    config = str(site.settings.source)
    done = run_cli("web", "enrol-link", "nobody@c4f.example", "--config", config)
    assert done.returncode == 2
    assert done.stderr.strip() == "c4f-gateway web: error: no account nobody@c4f.example"
    enrol = run_cli("web", "totp-enrol", "--config", config, MANAGER)
    assert enrol.returncode == 0 and "otpauth://totp/" in enrol.stdout, enrol.stderr
    missing = run_cli("web", "enrol-link", "--config", config)
    assert missing.returncode == 2 and "login" in missing.stderr
    # No [web] public_url: the link is on the console's listen address.
    assert LINK.search(run_cli("web", "enrol-link", MANAGER, "--config", config).stdout)
    found = LINK.search(run_cli("web", "enrol-link", MANAGER, "--config", config).stdout)
    assert found is not None and found.group(1) == "http://127.0.0.1:8025"
