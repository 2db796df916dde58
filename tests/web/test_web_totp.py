"""TOTP second factor: enrolment from the CLI, the code step, replay, required roles."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from support.pki import TestCA
from support.web import (
    ADMIN,
    MANAGER,
    PASSWORD,
    STAFF,
    Site,
    admin_actions,
    csrf_of,
    field_value,
    make_site,
    sign_in,
)

from gateway.cli import main
from gateway.errors import ConfigError
from gateway.settings.web import WebSettings
from gateway.web.auth import COOKIE


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca, web=WebSettings())  # TOTP for managers and admins


def _enrol(site: Site, login: str, capsys: pytest.CaptureFixture[str]) -> str:
    config = str(site.settings.source)
    assert main(["web", "totp-enrol", login, "--config", config, "--by", "it-admin"]) == 0
    out = capsys.readouterr().out
    uri = re.search(r"otpauth://totp/\S+", out)
    assert uri is not None, out
    parsed = pyotp.parse_uri(uri.group(0))
    assert parsed.name == login and parsed.issuer == site.settings.organisation.name
    assert f"type the key by hand: {parsed.secret}" in out
    return str(parsed.secret)


def test_required_role_without_enrolment_cannot_sign_in(site: Site) -> None:
    with site.client() as client:
        reply = sign_in(client, MANAGER)
        assert reply.status_code == 403
        assert "needs a second factor" in reply.text
        assert COOKIE not in client.cookies
    assert (MANAGER, "console sign-in refused") in [(a, b) for a, b, _ in admin_actions(site)]


def test_password_then_code_then_the_console(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = _enrol(site, MANAGER, capsys)
    # The secret is sealed in the database, never stored in clear.
    assert secret.encode() not in site.settings.storage.database.read_bytes()
    with site.client() as client:
        reply = sign_in(client, MANAGER)
        assert reply.headers["location"] == "/signin/code"
        half_token = client.cookies[COOKIE]
        # Password alone opens nothing.
        assert client.get("/register", follow_redirects=False).headers["location"] == "/signin"
        page = client.get("/signin/code")
        assert 'id="verify-status"' not in page.text  # the register's state: not yet
        wrong = client.post("/signin/code", data={"csrf": csrf_of(page.text), "code": "000000"})
        assert wrong.status_code == 401 and "code is wrong" in wrong.text
        code = pyotp.TOTP(secret).at(site.clock())
        ok = client.post(
            "/signin/code",
            data={"csrf": csrf_of(page.text), "code": code},
            follow_redirects=False,
        )
        assert ok.headers["location"] == "/register"
        # A new token after the second step (session fixation).
        assert client.cookies[COOKIE] != half_token
        assert client.get("/register", follow_redirects=False).status_code == 200
    with site.client() as other:
        # The same code again (a replay, even within its 30 seconds) is refused.
        sign_in(other, MANAGER)
        page = other.get("/signin/code")
        replay = other.post("/signin/code", data={"csrf": csrf_of(page.text), "code": code})
        assert replay.status_code == 401
        # Just after enrolling, the app still shows the code that confirmed it: say to wait.
        assert "wait for your app to show the next one" in replay.text
        site.clock.advance(30)
        fresh = pyotp.TOTP(secret).at(site.clock())
        assert (
            other.post(
                "/signin/code",
                data={"csrf": csrf_of(page.text), "code": fresh},
                follow_redirects=False,
            ).headers["location"]
            == "/register"
        )
    actions = [(a, b, d.get("second_factor", d.get("step"))) for a, b, d in admin_actions(site)]
    assert ("it-admin", "totp enrolled", None) in actions
    assert actions.count((MANAGER, "console sign-in", "totp")) == 2
    assert actions.count((MANAGER, "console sign-in failed", "totp")) == 2


def test_code_step_is_throttled(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    secret = _enrol(site, ADMIN, capsys)
    limit = site.settings.auth.max_failures_per_client
    with site.client() as client:
        sign_in(client, ADMIN)
        page = client.get("/signin/code")
        for _ in range(limit):
            client.post("/signin/code", data={"csrf": csrf_of(page.text), "code": "123456"})
        right = pyotp.TOTP(secret).at(site.clock())
        reply = client.post("/signin/code", data={"csrf": csrf_of(page.text), "code": right})
        assert reply.status_code == 429


def test_enrolled_account_is_asked_even_when_its_role_is_not_required(
    tmp_path: Path, ca: TestCA, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path / "gw", ca, web=WebSettings(require_totp=("admin",)))
    with site.client() as client:  # a manager without TOTP: password only
        assert sign_in(client, MANAGER).headers["location"] == "/register"
    secret = _enrol(site, MANAGER, capsys)
    with site.client() as client:
        assert sign_in(client, MANAGER).headers["location"] == "/signin/code"
        assert sign_in(client, MANAGER, secret=secret, at=site.clock()).status_code == 303


def test_staff_sign_in_with_a_password_unless_their_role_is_required(
    tmp_path: Path, ca: TestCA, capsys: pytest.CaptureFixture[str]
) -> None:
    assert WebSettings().require_totp == ("manager", "admin")  # the default leaves staff out
    with pytest.raises(ConfigError, match="console roles are staff, manager and admin"):
        WebSettings(require_totp=("nobody",))
    default = make_site(tmp_path / "a", ca, web=WebSettings())
    with default.client() as client:
        assert sign_in(client, STAFF).headers["location"] == "/held"
    site = make_site(tmp_path / "b", ca, web=WebSettings(require_totp=("staff", "admin")))
    with site.client() as client:
        reply = sign_in(client, STAFF)
        assert reply.status_code == 403 and "needs a second factor" in reply.text
    secret = _enrol(site, STAFF, capsys)
    with site.client() as client:
        assert sign_in(client, STAFF).headers["location"] == "/signin/code"
        reply = sign_in(client, STAFF, secret=secret, at=site.clock())
        assert reply.headers["location"] == "/held"


def test_totp_remove_from_cli_and_reset_from_the_console(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(site.settings.source)
    admin_secret = _enrol(site, ADMIN, capsys)
    _enrol(site, MANAGER, capsys)
    assert main(["web", "totp-remove", MANAGER, "--config", config]) == 0
    assert main(["web", "totp-remove", MANAGER, "--config", config]) == 2
    assert "has no second factor" in capsys.readouterr().err
    assert main(["web", "totp-enrol", "nobody@c4f.example", "--config", config]) == 2
    _enrol(site, MANAGER, capsys)
    with site.client() as client:
        sign_in(client, ADMIN, secret=admin_secret, at=site.clock())
        page = client.get("/staff")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        client.post("/staff", data={"csrf": csrf, "login": MANAGER, "action": "totp-reset"})
    assert not site.console.totp.enrolled(MANAGER)
    assert site.console.totp.enrolled(ADMIN)


def test_signin_form_fields_are_labelled(site: Site) -> None:
    with site.client() as client:
        html = client.get("/signin").text
    for name in ("login", "password"):
        assert f'<label for="{name}">' in html and f'id="{name}"' in html
    assert field_value(html, "signin_token")
    assert 'autocomplete="current-password"' in html
    assert PASSWORD not in html
