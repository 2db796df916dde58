"""Held messages in the review console, through Starlette's TestClient.

Messages are held through the console's own :class:`gateway.holds.service.Holds` (what the approval
filter leaves in the annotations, sealed in a real spool on a real SQLite file); the pages
are driven as a manager, an admin, the sender and the wrong people. What is asserted: who
sees what, that an unseeable message reads like a missing one, that every decision is
CSRF-checked and refused in words when the engine refuses it, and what the register then
says. The real SMTP path with a browser is test_web_held_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.web import (
    ADMIN,
    HELD_REASON,
    HELD_SUBJECT,
    HELD_TO,
    MANAGER,
    STAFF,
    Site,
    add_account,
    hold,
    make_site,
    signed_in,
)

from gateway.register.record import Record

OTHER = "olga.other@c4f.example"  # a manager, but not of the senders here
LONER = "lee.loner@c4f.example"  # staff with no line manager configured
CONTACT = HELD_TO
FROM_STAFF = "A0A0A0A0A0A1"
FROM_LONER = "B0B0B0B0B0B2"
SUBJECT = HELD_SUBJECT
REASON = HELD_REASON
ADMIN_ONLY = f"No line manager configured for {LONER}: only an admin can release this"


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)  # ADMIN, MANAGER, and STAFF managed by MANAGER
    add_account(site.store, OTHER, "manager")
    add_account(site.store, LONER, "staff")
    hold(site, FROM_STAFF, STAFF, consent="refused", reasons=["consent refused"])
    hold(site, FROM_LONER, LONER, consent="obtained", reasons=["flagged safeguarding"])
    return site


def _listed(html: str) -> list[str]:
    return re.findall(r'<a href="/held/([0-9A-F]{12})">', html)


def _flash(html: str) -> str:
    found = re.search(r'<p class="flash [a-z]+" role="[a-z]+">([^<]*)</p>', html)
    return found.group(1) if found else ""


def _record(site: Site, qid: str) -> Record:
    [record] = [r for r in site.console.register.records() if r.entry.queue_id == qid]
    return record


def _still_held(site: Site) -> list[str]:
    return [h.queue_id for h in site.console.holds.pending()]


LANDING = {ADMIN: "/register", MANAGER: "/register", OTHER: "/register"}


def _as(client: TestClient, login: str) -> str:
    return signed_in(client, login, LANDING.get(login, "/held"))


@pytest.mark.parametrize(
    ("login", "shown"),
    [
        (MANAGER, [FROM_STAFF]),  # their report's message only
        (ADMIN, [FROM_STAFF, FROM_LONER]),  # everyone's
        (STAFF, [FROM_STAFF]),  # their own
        (LONER, [FROM_LONER]),
        (OTHER, []),  # a manager of neither sender
    ],
)
def test_list_shows_each_viewer_only_what_they_may_decide_or_withdraw(
    site: Site, login: str, shown: list[str]
) -> None:
    with site.client() as client:
        _as(client, login)
        html = client.get("/held").text
    assert _listed(html) == shown
    nav = "Held messages" + (f" ({len(shown)} waiting)" if shown else "")
    assert f'<a href="/held">{nav}</a>' in html
    if not shown:
        assert "No held messages wait for you." in html
    if FROM_STAFF in shown:
        assert "consent refused" in html and f"{MANAGER} or an admin" in html
    # The gap a missing line manager leaves is shown wherever that message is.
    assert (ADMIN_ONLY in html) == (FROM_LONER in shown)
    for secret in (SUBJECT, REASON, "F-1042", CONTACT):  # details only on the message's page
        assert secret not in html


def test_details_for_those_allowed_and_not_found_for_everyone_else(site: Site) -> None:
    with site.client() as client:
        _as(client, MANAGER)
        page = client.get(f"/held/{FROM_STAFF.lower()}")  # IDs are read case-blind
        assert page.status_code == 200
        html = page.text
        for shown in (
            SUBJECT,
            REASON,
            "F-1042",
            "notes.pdf",
            "<td>j.smith@cafcass.example</td><td>Jo Smith</td><td>Cafcass</td><td>C-007</td>",
            "<dt>Consent</dt><dd>refused</dd>",
            "Note (required)",
            "Approve and send",
            "Refuse the message",
        ):
            assert shown in html, shown
        assert "Withdraw the message" not in html  # only the sender withdraws
        # Not theirs to see: exactly what an unknown ID gets, nothing decrypted.
        hidden = client.get(f"/held/{FROM_LONER}")
        unknown = client.get("/held/0123456789AB")
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.text.replace(FROM_LONER, "X") == unknown.text.replace("0123456789AB", "X")
        assert "There is no held message" in hidden.text and SUBJECT not in hidden.text
        assert client.get("/held/not-an-id").status_code == 404
    with site.client() as client:
        _as(client, OTHER)
        assert client.get(f"/held/{FROM_STAFF}").status_code == 404
    with site.client() as client:
        _as(client, STAFF)  # the sender sees their own message, and may only withdraw it
        html = client.get(f"/held/{FROM_STAFF}").text
        assert SUBJECT in html and "Withdraw the message" in html
        assert "Approve and send" not in html and f"{MANAGER} or an admin decides" in html
        assert client.get(f"/held/{FROM_LONER}").status_code == 404


def test_decisions_need_the_session_csrf_token(site: Site) -> None:
    with site.client() as client:
        _as(client, MANAGER)
        for action in ("approve", "refuse", "withdraw"):
            for data in ({}, {"csrf": "forged-token"}):
                reply = client.post(
                    f"/held/{FROM_STAFF}/{action}",
                    data={**data, "note": "fine"},
                    follow_redirects=False,
                )
                assert reply.status_code == 403 and "form has expired" in reply.text
    assert _still_held(site) == [FROM_STAFF, FROM_LONER]


def test_approve_needs_a_note_when_consent_was_refused_then_releases(site: Site) -> None:
    with site.client() as client:
        csrf = _as(client, MANAGER)
        reply = client.post(f"/held/{FROM_STAFF}/approve", data={"csrf": csrf, "note": "  "})
        assert reply.status_code == 400
        assert _flash(reply.text) == (
            "Consent was refused, not sought or not recorded: approving needs a note "
            "giving the reason for sharing (or record that consent was obtained)."
        )
        assert SUBJECT in reply.text  # the page again, to try once more
        assert _still_held(site) == [FROM_STAFF, FROM_LONER]
        reply = client.post(
            f"/held/{FROM_STAFF}/approve",
            data={"csrf": csrf, "note": "Court order in place"},
            follow_redirects=False,
        )
        assert (reply.status_code, reply.headers["location"]) == (303, "/held")
        after = client.get("/held").text
        assert _flash(after).startswith(f"Approved {FROM_STAFF}: it will now be sent.")
        assert _listed(after) == []
    assert _still_held(site) == [FROM_LONER]
    [row] = [r for r in site.console.spool.rows() if r.queue_id == FROM_STAFF]
    assert row.state == "queued"  # the delivery worker's to send
    steps = [(s["action"], s["by"], s["note"]) for s in _record(site, FROM_STAFF).approval_steps]
    assert steps == [("held", "", ""), ("approved", MANAGER, "Court order in place")]


def test_refuse_needs_a_note_for_the_sender(site: Site) -> None:
    with site.client() as client:
        csrf = _as(client, MANAGER)
        reply = client.post(f"/held/{FROM_STAFF}/refuse", data={"csrf": csrf})
        assert reply.status_code == 400
        assert _flash(reply.text) == "Refusing needs a note for the sender."
        reply = client.post(
            f"/held/{FROM_STAFF}/refuse", data={"csrf": csrf, "note": "Seek consent first"}
        )
        assert _flash(reply.text) == (
            f"Refused {FROM_STAFF}: it will not be sent. {STAFF} has been told, with your note."
        )
    assert _still_held(site) == [FROM_LONER]
    assert FROM_STAFF not in [r.queue_id for r in site.console.spool.rows()]
    record = _record(site, FROM_STAFF)
    assert (record.approval, record.approval_steps[-1]["note"]) == ("refused", "Seek consent first")


def test_only_the_sender_withdraws_and_never_approves(site: Site) -> None:
    with site.client() as client:
        csrf = _as(client, MANAGER)
        reply = client.post(f"/held/{FROM_STAFF}/withdraw", data={"csrf": csrf})
        assert reply.status_code == 400
        assert _flash(reply.text) == "Only the sender may withdraw a held message."
    with site.client() as client:
        csrf = _as(client, STAFF)
        reply = client.post(f"/held/{FROM_STAFF}/approve", data={"csrf": csrf, "note": "mine"})
        assert reply.status_code == 400
        assert _flash(reply.text) == "Nobody may approve or refuse their own message."
        # Another sender's message reads as missing, even to a POST.
        assert client.post(f"/held/{FROM_LONER}/withdraw", data={"csrf": csrf}).status_code == 404
        reply = client.post(f"/held/{FROM_STAFF}/withdraw", data={"csrf": csrf})
        assert _flash(reply.text) == f"Withdrew {FROM_STAFF}: it will not be sent."
        assert "No held messages wait for you." in reply.text
    assert _still_held(site) == [FROM_LONER]
    assert _record(site, FROM_STAFF).approval_steps[-1]["by"] == STAFF


def test_sender_without_a_line_manager_waits_for_an_admin(site: Site) -> None:
    with site.client() as client:
        csrf = _as(client, ADMIN)
        html = client.get(f"/held/{FROM_LONER}").text
        assert f"{ADMIN_ONLY}." in html
        assert "Note (optional)" in html  # consent obtained: no note needed
        accounts = client.get("/staff").text
        gap = "no line manager: their held messages can be released only by an admin"
        rows = {
            login: row
            for login, row in re.findall(r"<tr>\s*<td>([^<]+)</td>(.*?)</tr>", accounts, re.S)
        }
        assert gap in rows[LONER] and gap in rows[MANAGER] and gap not in rows[STAFF]
        # An admin's held message goes to another admin: that is no gap to warn of.
        assert ADMIN in rows and gap not in rows[ADMIN]
        reply = client.post(f"/held/{FROM_LONER}/approve", data={"csrf": csrf})
        assert _flash(reply.text).startswith(f"Approved {FROM_LONER}")
    assert _record(site, FROM_LONER).approval_steps[-1]["by"] == ADMIN


def test_expired_message_cannot_be_approved(site: Site) -> None:
    site.clock.advance(7 * 86400 + 1)
    with site.client() as client:
        csrf = _as(client, ADMIN)
        reply = client.post(f"/held/{FROM_LONER}/approve", data={"csrf": csrf})
        assert reply.status_code == 400
        assert _flash(reply.text) == f"{FROM_LONER} has expired; it will not be sent."
    assert FROM_LONER in _still_held(site)  # until the hourly sweep refuses it


def test_an_admins_held_message_shows_no_gap_warning(site: Site) -> None:
    """Admins have no line manager by design: another admin decides, and nothing warns."""
    second_admin, mine = "ed.admin@c4f.example", "C0C0C0C0C0C3"
    add_account(site.store, second_admin, "admin")
    hold(site, mine, ADMIN, consent="obtained", reasons=["flagged safeguarding"])
    with site.client() as client:
        signed_in(client, second_admin)
        listed = client.get("/held").text
        rows = dict(re.findall(r'<a href="/held/([0-9A-F]{12})">.*?</td>(.*?)</tr>', listed, re.S))
        assert ADMIN_ONLY in rows[FROM_LONER]  # a gap: staff with no line manager
        assert "another admin" in rows[mine] and "No line manager" not in rows[mine]
        page = client.get(f"/held/{mine}").text
        assert 'id="admin-only"' not in page and "No line manager" not in page
        assert "<dt>Who can decide</dt><dd>another admin</dd>" in page
