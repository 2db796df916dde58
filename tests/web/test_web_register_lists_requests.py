"""The console's register list shows requests received among the messages, as ``register
list`` does: a manager sees a request and whether it was answered without knowing its
number. A consent filter (a message's status) leaves requests out."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from support.pki import TestCA
from support.register import accepted, record
from support.web import MANAGER, STAFF, Site, make_site, signed_in

from gateway.register import requests


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


def _rows(html: str) -> list[str]:
    """Each row of the list as its cells' text, joined by |."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        "|".join(
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)
        )
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_a_request_received_is_in_the_list_with_who_asked(site: Site) -> None:
    new = requests.NewRequest("Cafcass North", "phone", "2026-01-05", "Notes", STAFF, "F-1")
    number = requests.record(site.console.register, new, date(2026, 1, 6))
    tagged = {"consent": "obtained", "family": "F-1", "external": True}
    record(site.console.register, accepted("Q1", site.clock(), disclosure=tagged, staff=STAFF))
    with site.client() as client:
        csrf = signed_in(client, MANAGER)
        page = client.get("/register").text
        rows = _rows(page)
        assert len(rows) == 2 and "2 records;" in page
        asked = rows[-1].split("|")
        assert (asked[0], asked[2], asked[3], asked[6]) == (
            str(number),
            STAFF,
            "from Cafcass North",
            "F-1",
        )
        assert asked[7] == "not answered yet"
        form = {"csrf": csrf, "consent": "obtained", "action": "apply"}
        client.post("/register/filter", data=form)
        filtered = _rows(client.get("/register").text)
    assert len(filtered) == 1 and "from Cafcass North" not in filtered[0]
