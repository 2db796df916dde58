"""No personal data in URLs or logs.

A reviewer's whole session (filter by staff, family and recipient, open an entry,
record a concern, add, search and import contacts, the family report, a failed
sign-in) is replayed with the log at debug level; then every URL the browser was sent
to or offered (requests, redirects, links and form targets) and every log line are
searched for the personal details that went through the pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from support.pki import TestCA
from support.register import accepted, record
from support.web import ADMIN, FakeResolver, Site, make_site, sign_in, signed_in

from gateway.logging import configure

PERSONAL = {
    "staff": "alice.carer@c4f.example",
    "recipient": "j.smith@cafcass.example",
    "family": "F-1042",
    "concern": "Father asked where the child lives",
    "contact": "k.lee@council.example",
    "organisation": "Camden Council",
    "password": "not-the-right-password",
    "subject": "Contact report for Ellie",
}


@pytest.fixture
def debug_log() -> Iterator[None]:
    configure("json", "debug")
    yield
    configure("console", "warning")  # as tests/conftest.py leaves it


def _urls(reply: httpx.Response) -> list[str]:
    found = [str(reply.request.url), reply.headers.get("location", "")]
    found += re.findall(r'(?:href|action)="([^"]*)"', reply.text)
    return found


def test_personal_data_never_in_urls_or_logs(
    tmp_path: Path, ca: TestCA, debug_log: None, capsys: pytest.CaptureFixture[str]
) -> None:
    site: Site = make_site(tmp_path / "gw", ca, resolver=FakeResolver())
    record(
        site.console.register,
        accepted(
            "Q1",
            site.clock(),
            staff=PERSONAL["staff"],
            rcpts=(PERSONAL["recipient"],),
            disclosure={"family": PERSONAL["family"]},
        ),
    )
    urls: list[str] = []
    with site.client() as client:
        seen = _Recorder(client, urls)
        sign_in(client, ADMIN, PERSONAL["password"])
        csrf = signed_in(client, ADMIN)
        seen.get("/register")
        seen.post(
            "/register/filter",
            csrf=csrf,
            staff=PERSONAL["staff"],
            family=PERSONAL["family"],
            recipient=PERSONAL["recipient"],
            organisation=PERSONAL["organisation"],
        )
        page = seen.get("/register")
        assert PERSONAL["family"] in page.text  # the filter was applied (and shown back)
        seen.get("/register/export.csv")
        seen.get("/register/entry/1")
        seen.post("/register/entry/1", csrf=csrf, action="concern", concern=PERSONAL["concern"])
        seen.post("/register/report", csrf=csrf, family=PERSONAL["family"])
        seen.get("/register/report")
        seen.post(
            "/contacts/new",
            csrf=csrf,
            kind="address",
            address=PERSONAL["contact"],
            display_name="Kim Lee",
            organisation=PERSONAL["organisation"],
            verified_how="phoned back",
        )
        seen.post("/contacts/search", csrf=csrf, q=PERSONAL["contact"])
        listed = seen.get("/contacts")
        assert PERSONAL["contact"] in listed.text
        seen.get("/contacts/1")
        seen.post(
            "/contacts/import/preview",
            csrf=csrf,
            csv_text="kind,address\r\naddress,x@y.example\r\n",
        )
        seen.get("/staff")
        seen.get("/register/admin")
    log = capsys.readouterr().out
    assert log.count('"event": "web_request"') >= 15  # the log did run, at debug level
    for what, value in PERSONAL.items():
        assert value not in log, f"{what} in the log"
        for url in urls:
            assert value.lower() not in url.lower(), f"{what} in the URL {url}"
    assert len(urls) > 40


class _Recorder:
    def __init__(self, client: TestClient, urls: list[str]) -> None:
        self.client, self.urls = client, urls

    def get(self, path: str) -> httpx.Response:
        reply = self.client.get(path)
        for r in [*reply.history, reply]:
            self.urls += _urls(r)
        assert reply.status_code == 200, (path, reply.status_code)
        return reply

    def post(self, path: str, *, csrf: str, **data: str) -> httpx.Response:
        reply = self.client.post(path, data={"csrf": csrf, **data})
        for r in [*reply.history, reply]:
            self.urls += _urls(r)
        assert reply.status_code in (200, 400), (path, reply.status_code)
        return reply
