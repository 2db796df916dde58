"""The console's front page (the register list) shows a manager the register's duties in
their scope: "person informed" overdue (policy, "Inter-agency working") and retention
holds due for review (policy, "Storage of information"), each with a button that filters
the list to them; the filter has the same two checkboxes.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.register import DAY, accepted, record
from support.web import ADMIN, MANAGER, Site, add_account, make_site, signed_in

ALICE = "alice@c4f.example"  # reports to MANAGER
CAROL = "carol@c4f.example"  # reports to nobody: outside MANAGER's scope


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    add_account(site.store, ALICE, "staff", (MANAGER,))
    add_account(site.store, CAROL, "staff")
    reg, now = site.console.register, site.clock()
    without = {"consent": "not-sought", "reason": "Court direction", "external": True}
    record(reg, accepted("Q1", now - 20 * DAY, disclosure=without))  # 1: overdue
    record(reg, accepted("Q2", now - 5 * DAY, disclosure=without))  # 2: not yet due
    record(reg, accepted("Q3", now - 20 * DAY, disclosure=without, staff=CAROL))  # 3
    injury = {"consent": "obtained", "external": True, "injury": True}
    record(reg, accepted("Q4", now - 400 * DAY, disclosure=injury))  # 4: review due
    reg.checkpoint()
    return site


def _entries(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/register/entry/(\d+)">', html)]


def _duty(html: str, key: str) -> str:
    found = re.search(rf'<p id="duty-{key}">([^<]*)', html)
    return " ".join(found.group(1).split()) if found else ""


def test_manager_sees_their_duties_and_a_button_lists_them(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        front = client.get("/register").text
        assert _duty(front, "informed") == (
            '1 disclosure without consent: "person informed" is overdue.'
        )
        assert _duty(front, "review") == "1 retention hold due for review."
        assert 'name="inform_due" type="checkbox"' in front
        assert 'name="hold_review_due" type="checkbox"' in front
        assert _show(client, csrf, inform_due="1") == [1]
        assert _show(client, csrf, hold_review_due="1") == [4]
        # Answered, it leaves the page's count and the list.
        site.console.register.annotate(1, MANAGER, informed="yes", informed_on="2023-11-10")
        front = client.get("/register").text
        assert _duty(front, "informed") == ""
        assert _duty(front, "review") == "1 retention hold due for review."
        assert _show(client, csrf, inform_due="1") == []


def test_admin_counts_every_record(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        front = client.get("/register").text
        assert _duty(front, "informed").startswith("2 disclosures without consent")
        assert _show(client, csrf, inform_due="1") == [3, 1]


def test_a_refused_person_informed_answer_keeps_what_was_typed(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)

        def answer(**fields: str) -> tuple[int, str]:
            data = {"csrf": csrf, "action": "informed", **fields}
            reply = client.post("/register/entry/1", data=data, follow_redirects=False)
            return reply.status_code, reply.text

        status, html = answer(informed="no", on="2026-12-01")  # no reason
        assert status == 400
        assert _flash(html) == "the person was not informed: give the reason why not"
        assert _fields(html) == {"informed": "no", "on": "2026-12-01", "informed_reason": ""}
        status, html = answer(informed="yes", informed_reason="Told <b>by phone</b> & by letter")
        assert status == 400
        assert _flash(html) == "the person was informed: give the date they were told (YYYY-MM-DD)"
        assert _fields(html) == {
            "informed": "yes",
            "on": "",
            "informed_reason": "Told <b>by phone</b> & by letter",
        }
        assert "Told &lt;b&gt;by phone&lt;/b&gt; &amp; by letter</textarea>" in html
        status, html = answer(informed="yes", on="yesterday")
        assert _fields(html)["on"] == "yesterday"  # shown back, to be corrected
        unanswered = site.console.register.record(1)
        assert unanswered is not None and unanswered.informed == ""  # nothing recorded
        # Answered, the page's form is empty again.
        status, _ = answer(informed="yes", on="2026-12-01")
        assert status == 303
        html = client.get("/register/entry/1").text
        assert _flash(html).startswith("Recorded follow-up")
        assert _fields(html) == {"informed": "", "on": "", "informed_reason": ""}


class _Form(HTMLParser):
    """The "person informed" form's state as a browser shows it, and the page's flash."""

    def __init__(self) -> None:
        super().__init__()
        self.fields = {"informed": "", "on": "", "informed_reason": ""}
        self.flash = ""
        self._into = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name") or ""
        if tag == "input" and name == "informed" and "checked" in a:
            self.fields["informed"] = a.get("value") or ""
        elif tag == "input" and name == "on":
            self.fields["on"] = a.get("value") or ""
        elif tag == "textarea" and name == "informed_reason":
            self._into = "informed_reason"
        elif tag == "p" and "flash" in (a.get("class") or ""):
            self._into = "flash"

    def handle_endtag(self, tag: str) -> None:
        self._into = ""

    def handle_data(self, data: str) -> None:
        if self._into == "flash":
            self.flash += data
        elif self._into:
            self.fields[self._into] += data


def _parsed(html: str) -> _Form:
    form = _Form()
    form.feed(html)
    return form


def _fields(html: str) -> dict[str, str]:
    return _parsed(html).fields


def _flash(html: str) -> str:
    return _parsed(html).flash.strip()


def _show(client: TestClient, csrf: str, **flag: str) -> list[int]:
    """Press a duty's "Show them" button: the filter it posts, then the list."""
    data = {"csrf": csrf, "action": "apply", **flag}
    reply = client.post("/register/filter", data=data, follow_redirects=False)
    assert reply.status_code == 303
    return _entries(client.get("/register").text)
