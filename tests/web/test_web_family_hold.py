"""A family-level retention hold from the family report page (policy, "Storage of
information"): placed and released by a manager in the console, recorded exactly as
``register hold-family`` / ``release-family`` record it, and kept from staff."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.pki import TestCA
from support.register import accepted, record
from support.web import ADMIN, MANAGER, STAFF, Site, add_account, make_site, signed_in

from gateway.cli import main
from gateway.register.criteria import Filters
from gateway.register.family_hold import standing_hold
from gateway.register.retention import FAMILY_HOLD

REASON = "Child protection plan in place"


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


def _holds(site: Site) -> list[tuple[int, int, dict[str, object]]]:
    """Every family-hold entry and follow-up as (seq, ref, data)."""
    return [
        (e.seq, e.ref, dict(e.data))
        for r in site.console.register.records(Filters(kinds=(FAMILY_HOLD,)))
        for e in (r.entry, *r.followups)
    ]


def test_a_manager_places_and_releases_a_family_hold_as_the_cli_does(site: Site) -> None:
    record(
        site.console.register,
        accepted("Q1", site.clock(), disclosure={"family": "F-7"}, staff=STAFF),
    )
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        client.post("/register/report", data={"csrf": csrf, "family": "F-7"})
        page = client.get("/register/report").text
        assert "Place a retention hold on the family" in page
        form = {"csrf": csrf, "family": "F-7", "category": "child-protection", "reason": REASON}
        reply = client.post("/register/report/hold", data=form, follow_redirects=False)
        assert (reply.status_code, reply.headers["location"]) == (303, "/register/report")
        page = client.get("/register/report").text
        held = standing_hold(site.console.register, "F-7")
        assert held is not None
        assert f"Family F-7 is on a retention hold (child-protection): entry {held.seq}." in page
        assert f'child-protection hold, entry <a href="/register/entry/{held.seq}">' in page
        assert "Release the family's retention hold" in page
        assert "1 record(s)" in page
        # The untagged record of the family is kept by it.
        [kept] = site.console.register.records(Filters(family="F-7"))
        assert kept.own_hold is None and kept.hold is not None  # untagged, kept
        assert kept.hold.family_hold == held.seq
        release = {"csrf": csrf, "family": "F-7", "reason": "Plan ended"}
        page = client.post("/register/report/release", data=release).text
        [(_, ref, data)] = [h for h in _holds(site) if h[1]]
        assert ref == held.seq and data["reason"] == "Plan ended" and data["actor"] == MANAGER
        assert "Released the retention hold on family F-7: entry " in page
        assert "Place a retention hold on the family" in page
    assert standing_hold(site.console.register, "F-7") is None
    # The same hold and release from the command line, on another family.
    config = str(site.settings.source)
    assert main(["register", "hold-family", "F-8", "--category", "child-protection",
                 "--reason", REASON, "--by", MANAGER, "--config", config]) == 0  # fmt: skip
    assert main(["register", "release-family", "F-8", "--reason", "Plan ended",
                 "--by", MANAGER, "--config", config]) == 0  # fmt: skip
    console_made, cli_made = _holds(site)[:2], _holds(site)[2:]
    assert len(console_made) == len(cli_made) == 2
    for (_, ref, data), (_, cref, cdata) in zip(console_made, cli_made, strict=True):
        assert (ref == 0) == (cref == 0) and data == {**cdata, "family": "F-7"}


def test_a_hold_without_a_reason_is_refused_and_nothing_is_recorded(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        client.post("/register/report", data={"csrf": csrf, "family": "F-7"})
        form = {"csrf": csrf, "family": "F-7", "category": "injury", "reason": "  "}
        page = client.post("/register/report/hold", data=form).text
        assert "No hold placed: a family hold needs a reason." in page
        form = {**form, "reason": REASON, "review_on": "2001-01-01"}
        page = client.post("/register/report/hold", data=form).text
        assert "No hold placed: the review date 2001-01-01 must be after today." in page
        page = client.post("/register/report/release", data={**form, "reason": "x"}).text
        assert "Not released: family F-7 has no family hold standing." in page
    assert _holds(site) == []


def test_staff_cannot_place_a_family_hold(site: Site) -> None:
    with site.client() as client:
        csrf = signed_in(client, STAFF, landing="/held")
        form = {"csrf": csrf, "family": "F-7", "category": "injury", "reason": REASON}
        assert client.post("/register/report/hold", data=form).status_code == 403
        assert client.post("/register/report/release", data=form).status_code == 403
    assert _holds(site) == []


def test_the_hold_placed_names_its_category_the_same_in_the_console_and_the_cli(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        form = {"csrf": csrf, "family": "F-7", "category": "injury", "reason": REASON}
        page = client.post("/register/report/hold", data=form).text
    assert "Family F-7 is on a retention hold (injury): entry " in page
    config = str(site.settings.source)
    capsys.readouterr()
    assert main(["register", "hold-family", "F-8", "--category", "other",
                 "--reason", REASON, "--by", MANAGER, "--config", config]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("Family F-8 is on a retention hold (other): entry ")


def test_a_hold_outside_the_managers_scope_is_not_shown_superseded_or_released(
    site: Site,
) -> None:
    """Under ``manager_scope = "reports"`` a record outside the viewer's scope is missing
    everywhere; a family hold set by another manager is too, and the form cannot
    supersede or release it. An admin reads it."""
    config = str(site.settings.source)
    add_account(site.store, "other.manager@c4f.example", "manager")
    assert main(["register", "hold-family", "F-7", "--category", "child-protection",
                 "--reason", REASON, "--by", "other.manager@c4f.example",
                 "--config", config]) == 0  # fmt: skip
    before = _holds(site)
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        client.post("/register/report", data={"csrf": csrf, "family": "F-7"})
        page = client.get("/register/report").text
        assert "A retention hold set by someone else stands on this family" in page
        assert REASON not in page and "Place a retention hold" not in page
        form = {"csrf": csrf, "family": "F-7", "category": "other", "reason": "mine"}
        page = client.post("/register/report/hold", data=form).text
        assert "No hold placed: a hold set by someone else stands on this family" in page
        page = client.post("/register/report/release", data=form).text
        assert "Not released: a hold set by someone else stands on this family" in page
    assert _holds(site) == before
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        client.post("/register/report", data={"csrf": csrf, "family": "F-7"})
        page = client.get("/register/report").text
    assert f"reason: {REASON}" in page and "Release the family's retention hold" in page
