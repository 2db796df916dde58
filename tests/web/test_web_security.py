"""Security properties of the review console, through Starlette's TestClient.

Every page needs a signed-in account; every form needs the session's CSRF token; a
manager is refused on admin pages, a staff member everywhere but their held messages;
the headers forbid framing, scripts and caching; sessions end when idle; sign-in is
throttled and recorded in the admin trail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from support.pki import TestCA
from support.web import (
    ADMIN,
    MANAGER,
    PASSWORD,
    STAFF,
    Site,
    admin_actions,
    field_value,
    make_site,
    sign_in,
    signed_in,
)

from gateway.settings.web import WebSettings
from gateway.web.app import create_app
from gateway.web.auth import COOKIE

ADMIN_ONLY = ("/contacts", "/queue", "/staff", "/register/admin")


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


# Pages for someone not signed in: sign-in, and the one-time second-factor enrolment link
# (its token is the key; tests/web/test_web_enrol_link.py checks an unknown one is refused).
SIGNED_OUT = ("/signin", "/enrol")


def _paths(site: Site, method: str) -> list[str]:
    """Every route of the app for ``method``, with sample path parameters filled in."""
    out = []
    for route in create_app(site.console).routes:
        if isinstance(route, Route) and route.methods and method in route.methods:
            out.append(
                route.path.replace("{seq:int}", "1")
                .replace("{cid:int}", "1")
                .replace("{qid:str}", "0123456789AB")
                .replace("{number:int}", "1")
            )
    return out


def test_route_lists_cover_the_console(site: Site) -> None:
    gets, posts = _paths(site, "GET"), _paths(site, "POST")
    assert {"/register", "/register/entry/1", "/contacts", "/queue", "/staff"} <= set(gets)
    assert {
        "/register/filter",
        "/register/entry/1",
        "/contacts/new",
        "/queue/0123456789AB/delete",
    } <= set(posts)


def test_every_page_requires_sign_in(site: Site) -> None:
    with site.client() as client:
        for path in _paths(site, "GET"):
            if path.startswith(SIGNED_OUT):
                continue
            reply = client.get(path, follow_redirects=False)
            assert (reply.status_code, reply.headers.get("location")) == (303, "/signin"), path
        for path in _paths(site, "POST"):
            if path.startswith(SIGNED_OUT) or path == "/signout":
                continue
            reply = client.post(path, data={"csrf": "x"}, follow_redirects=False)
            assert (reply.status_code, reply.headers.get("location")) == (303, "/signin"), path
    # Nothing was recorded but the start-up check: no anonymous change got through.
    assert admin_actions(site) == []


def test_post_without_the_session_csrf_token_is_refused(site: Site) -> None:
    with site.client() as client:
        signed_in(client, ADMIN)
        before = site.store.query("SELECT count(*) FROM register")[0][0]
        for path in _paths(site, "POST"):
            if path.startswith(SIGNED_OUT):
                continue
            for data in ({}, {"csrf": "forged-token"}):
                reply = client.post(path, data={**data, "action": "hold"}, follow_redirects=False)
                assert reply.status_code == 403, (path, data, reply.status_code)
                assert "form has expired" in reply.text
        after = site.store.query("SELECT count(*) FROM register")[0][0]
        assert after == before  # not one change, not one follow-up
        assert client.get("/register", follow_redirects=False).status_code == 200


def test_cross_site_post_is_refused_even_with_the_token(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            reply = client.post(
                "/register/filter", data={"csrf": csrf}, headers=headers, follow_redirects=False
            )
            assert reply.status_code == 403
        same = client.post(
            "/register/filter",
            data={"csrf": csrf},
            headers={"Origin": "https://console.test", "Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
        )
        assert same.status_code == 303


def test_signin_form_needs_its_double_submit_token(site: Site) -> None:
    with site.client() as client:
        client.get("/signin")
        reply = client.post(
            "/signin", data={"login": ADMIN, "password": PASSWORD}, follow_redirects=False
        )
        assert reply.status_code == 403
        assert COOKIE not in reply.cookies


def test_manager_is_refused_on_admin_pages(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        for path in _paths(site, "GET"):
            if path.startswith(("/contacts", "/queue", "/staff", "/register/admin")):
                reply = client.get(path, follow_redirects=False)
                assert reply.status_code == 403, path
                assert "Admins only" in reply.text
        contacts_before = site.store.query("SELECT count(*) FROM contacts")[0][0]
        for path in _paths(site, "POST"):
            if path.startswith(("/contacts", "/queue", "/staff")):
                reply = client.post(
                    path,
                    data={"csrf": csrf, "login": MANAGER, "action": "role", "role": "admin"},
                    follow_redirects=False,
                )
                assert reply.status_code == 403, path
        assert site.console.staff.get(MANAGER).role == "manager"  # type: ignore[union-attr]
        assert site.store.query("SELECT count(*) FROM contacts")[0][0] == contacts_before
        # The navigation does not even offer them.
        page = client.get("/register").text
        assert all(f'href="{p}"' not in page for p in ADMIN_ONLY)


def test_staff_sign_in_only_to_their_held_messages(site: Site) -> None:
    with site.client() as client:
        reply = sign_in(client, STAFF)
        assert (reply.status_code, reply.headers["location"]) == (303, "/held")
        assert COOKIE in client.cookies
        assert client.get("/", follow_redirects=False).headers["location"] == "/held"
        assert client.get("/signin", follow_redirects=False).headers["location"] == "/held"
        held = client.get("/held")
        assert held.status_code == 200
        csrf = field_value(held.text, "csrf")
        # The navigation offers nothing else but recording a request and the policy, nor
        # the reviewers' banner.
        assert re.findall(r'<li><a href="([^"]+)"', held.text) == [
            "/held",
            "/requests/new",
            "/policy",
        ]
        assert "Verify now" not in held.text
        for path in ("/register", "/contacts", "/queue", "/staff"):
            reply = client.get(path, follow_redirects=False)
            assert reply.status_code == 403, path
        for path in _paths(site, "GET"):
            if path.startswith((*SIGNED_OUT, "/held", "/policy", "/requests")) or path == "/":
                continue
            reply = client.get(path, follow_redirects=False)
            assert reply.status_code == 403, path
            assert "only" in reply.text and "Your role (staff) does not include it" in reply.text
        before = site.store.query("SELECT count(*) FROM register")[0][0]
        for path in _paths(site, "POST"):
            if path.startswith((*SIGNED_OUT, "/signout", "/held", "/requests")):
                continue  # /requests/new: staff record requests (test_web_requests_browser.py)
            data = {"csrf": csrf, "action": "hold", "family": "F-1", "login": STAFF}
            reply = client.post(path, data={**data, "role": "admin"}, follow_redirects=False)
            assert reply.status_code == 403, path
        assert site.store.query("SELECT count(*) FROM register")[0][0] == before
        assert site.console.staff.get(STAFF).role == "staff"  # type: ignore[union-attr]
    assert (STAFF, "console sign-in", {"client": "testclient", "second_factor": "none"}) in (
        admin_actions(site)
    )


def test_staff_on_a_reviewer_page_is_told_whose_page_it_is(site: Site) -> None:
    with site.client() as client:
        signed_in(client, STAFF, landing="/held")
        register = client.get("/register").text
        assert "<h1>Line managers and admins only</h1>" in register
        assert '<a href="/held">Back to your held messages</a>' in register
        assert "<h1>Admins only</h1>" in client.get("/queue").text


def test_role_taken_away_ends_access_at_the_next_click(site: Site) -> None:
    with site.client() as client:
        signed_in(client, MANAGER)
        site.console.staff.set_role(MANAGER, "staff")
        assert client.get("/register", follow_redirects=False).status_code == 403
        assert client.get("/held", follow_redirects=False).status_code == 200
        site.console.staff.remove(MANAGER)
        reply = client.get("/held", follow_redirects=False)
        assert reply.headers["location"] == "/signin"


def test_security_headers_on_every_response(site: Site) -> None:
    with site.client() as client:
        signed_in(client, ADMIN)
        for path in (
            "/signin",
            "/register",
            "/register/entry/1",
            "/register/export.csv",
            "/register/report",
            "/contacts",
            "/queue",
            "/nowhere",
        ):
            h = client.get(path).headers
            assert h["content-security-policy"].startswith("default-src 'none';"), path
            assert "script-src" not in h["content-security-policy"]  # no scripts at all
            assert "frame-ancestors 'none'" in h["content-security-policy"]
            assert h["x-frame-options"] == "DENY"
            assert h["x-content-type-options"] == "nosniff"
            assert h["referrer-policy"] == "no-referrer"
            assert h["cache-control"] == "no-store", path  # register pages never cached
            assert "server" not in h or "uvicorn" not in h["server"]
        css = client.get("/static/console.css")
        assert css.status_code == 200 and "@media print" in css.text
        assert css.headers["cache-control"] == "private, max-age=3600"


def test_https_console_sends_hsts(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca, web=WebSettings(tls=True, require_totp=()))
    with TestClient(create_app(site.console), base_url="https://console.test") as client:
        assert client.get("/signin").headers["strict-transport-security"] == "max-age=31536000"


def test_session_cookie_is_secure_httponly_samesite(site: Site) -> None:
    with site.client() as client:
        reply = sign_in(client, ADMIN)
        cookie = next(
            v for k, v in reply.headers.multi_items() if k == "set-cookie" and COOKIE in v
        )
        attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= attrs
        assert not any(a.startswith(("domain", "max-age", "expires")) for a in attrs)
        token = cookie.split(";")[0].split("=", 1)[1]
        # Only the token's hash is stored.
        rows = site.store.query("SELECT key FROM web_sessions")
        assert len(rows) == 1 and token not in rows[0]["key"] and len(rows[0]["key"]) == 64


def test_session_expires_when_idle_and_at_its_maximum_age(site: Site) -> None:
    idle = site.console.web.session_idle_timeout
    with site.client() as client:
        signed_in(client, MANAGER)
        for _ in range(3):  # activity keeps it alive past one idle period
            site.clock.advance(idle - 5)
            assert client.get("/register", follow_redirects=False).status_code == 200
        site.clock.advance(idle + 1)
        reply = client.get("/register", follow_redirects=False)
        assert reply.headers["location"] == "/signin"
        assert site.store.query("SELECT count(*) FROM web_sessions")[0][0] == 0

        site.clock.advance(60)  # past the throttle's memory of nothing: sign in again
        signed_in(client, MANAGER)
        steps = int(site.console.web.session_max_age // (idle - 5)) + 1
        for _ in range(steps):
            site.clock.advance(idle - 5)
            client.get("/register", follow_redirects=False)
        assert client.get("/register", follow_redirects=False).headers["location"] == "/signin"


def test_sign_out_ends_the_session(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        reply = client.post("/signout", data={"csrf": csrf}, follow_redirects=False)
        assert reply.headers["location"] == "/signin"
        assert site.store.query("SELECT count(*) FROM web_sessions")[0][0] == 0
        assert client.get("/register", follow_redirects=False).status_code == 303
    assert [a for _, a, _ in admin_actions(site)] == ["console sign-in", "console sign-out"]


def test_failed_sign_ins_are_throttled_and_recorded(site: Site) -> None:
    limit = site.settings.auth.max_failures_per_client
    with site.client() as client:
        unknown = sign_in(client, "nobody@c4f.example", "wrong-password-1")
        wrong = sign_in(client, MANAGER, "wrong-password-2")
        assert unknown.status_code == wrong.status_code == 401
        # An unknown login and a wrong password read the same (AUTH-2).
        assert _message(unknown.text) == _message(wrong.text) == "Wrong login or password."
        for _ in range(limit - 2):
            sign_in(client, MANAGER, "wrong-password-3")
        blocked = sign_in(client, MANAGER)  # the right password, from a throttled client
        assert blocked.status_code == 429
        assert COOKIE not in client.cookies
        site.clock.advance(site.settings.auth.lockout_seconds + 1)
        assert sign_in(client, MANAGER).status_code == 303
    actions = admin_actions(site)
    failed = [d for _, a, d in actions if a == "console sign-in failed"]
    assert len(failed) == limit
    assert all(d == {"client": "testclient", "step": "password"} for d in failed)
    assert actions[-1][:2] == (MANAGER, "console sign-in")
    # The password itself is nowhere in the database.
    raw = site.settings.storage.database.read_bytes()
    assert b"wrong-password" not in raw and PASSWORD.encode() not in raw


def _message(html: str) -> str:
    found = re.search(r'<p class="flash error" role="alert">([^<]*)</p>', html)
    return found.group(1) if found else ""


def test_signin_page_offers_a_fresh_token_each_visit(site: Site) -> None:
    with site.client() as a, site.client() as b:
        assert field_value(a.get("/signin").text, "signin_token") != field_value(
            b.get("/signin").text, "signin_token"
        )
