"""The staff page's "Issue enrolment link" (issue 15): the same one-time link as
``c4f-gateway web enrol-link LOGIN``, recorded as the CLI records it and shown once to
the admin; in chromium (JavaScript off) the link shown works for enrolment."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from support.browser import chromium, context, need_chromium, press, shot, sign_in
from support.pki import TestCA
from support.web import (
    ADMIN,
    MANAGER,
    PASSWORD,
    Site,
    admin_actions,
    make_site,
    served,
    signed_in,
)

from gateway.web.enrol_links import link_base


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


def _links(site: Site) -> list[tuple[str, dict[str, object]]]:
    return [(a, d) for a, action, d in admin_actions(site) if action == "totp enrolment link"]


@pytest.mark.slow
async def test_admin_issues_a_link_on_the_staff_page_and_it_enrols(site: Site) -> None:
    need_chromium()
    async with served(site) as base, chromium() as browser:
        admin = await (await context(browser, base)).new_page()
        await sign_in(admin, ADMIN, landing="/register")
        await admin.goto("/staff")
        await press(admin, f"Issue enrolment link for {MANAGER}")
        assert await admin.locator("h1").inner_text() == f"Enrolment link for {MANAGER}"
        url = await admin.locator("#enrol-link").inner_text()
        assert url.startswith(f"{link_base(site.console.web)}/enrol/"), url
        await shot(admin, "staff-enrol-link-issued")
        # Shown once: the accounts page does not show it again.
        await admin.goto("/staff")
        assert "/enrol/" not in await admin.content()

        # The person opens it (here on the test's own port) and enrols.
        path = "/enrol/" + url.split("/enrol/", 1)[1]
        person = await (await context(browser, base)).new_page()
        await person.goto(path)
        assert await person.locator("#enrol-login").inner_text() == MANAGER
        await person.get_by_label("Password").fill(PASSWORD)
        await press(person, "Continue")
        key = (await person.locator("#enrol-key").inner_text()).replace(" ", "")
        code = pyotp.TOTP(key).at(site.clock())
        await person.get_by_label("The 6-digit code from your authenticator app").fill(code)
        await press(person, "Confirm")
        assert "is active" in await person.locator("#enrol-done").inner_text()
        await person.goto(path)  # spent
        assert "used or expired" in await person.locator("#enrol-gone").inner_text()
    assert site.console.totp.enrolled(MANAGER)
    # Recorded as `web enrol-link` records it: who issued it, for whom; never the token.
    assert _links(site) == [(ADMIN, {"login": MANAGER})]


def test_only_an_admin_with_the_form_token_issues_one(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        form = {"csrf": csrf, "login": MANAGER, "action": "enrol-link"}
        assert client.post("/staff", data=form).status_code == 403
    with site.client() as client:
        signed_in(client, ADMIN)
        forged = {"csrf": "forged", "login": MANAGER, "action": "enrol-link"}
        assert client.post("/staff", data=forged).status_code == 403
    assert _links(site) == []
    assert site.store.query("SELECT count(*) FROM web_totp_links")[0][0] == 0


def test_a_new_link_replaces_the_one_before(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        form = {"csrf": csrf, "login": MANAGER, "action": "enrol-link"}
        first, second = client.post("/staff", data=form), client.post("/staff", data=form)
        assert first.status_code == second.status_code == 200
        assert first.headers["cache-control"] == "no-store"  # the link is not kept
        old, new = (r.text.split("/enrol/", 1)[1].split("<", 1)[0] for r in (first, second))
        assert old != new
        assert "is unknown, used or expired" in client.get(f"/enrol/{old}").text
        assert client.get(f"/enrol/{new}").status_code == 200
        missing = client.post("/staff", data={**form, "login": "nobody@c4f.example"})
        assert "No such account." in missing.text
    assert _links(site) == [(ADMIN, {"login": MANAGER})] * 2
