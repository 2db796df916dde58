"""Accessible pages: every form control has a real label, pages have one h1, a language,
a skip link, and the print stylesheet hides navigation and forms (the issue's "real
labels, keyboard use, readable at 200% zoom, a print stylesheet"; keyboard use and zoom
are checked in a real browser in ``test_web_browser.py``).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from support.pki import TestCA
from support.register import accepted, record
from support.web import ADMIN, MANAGER, STAFF, hold, make_site, signed_in

from gateway.register import requests

PAGES = (
    "/register",
    "/register/entry/1",
    "/register/report",
    "/register/admin",
    "/contacts",
    "/contacts/new",
    "/contacts/1",
    "/contacts/import",
    "/contacts/1/remove",
    "/queue",
    "/staff",
    "/held",
    "/held/A0A0A0A0A0A1",
)
_CONTROL = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.S)


def _unlabelled(html: str) -> list[str]:
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    out = []
    for tag, attrs in _CONTROL.findall(html):
        if re.search(r'type="hidden"|\shidden[\s>]|aria-hidden="true"', attrs + ">"):
            continue
        found = re.search(r'\bid="([^"]+)"', attrs)
        if found is None or found.group(1) not in labels:
            out.append(f"<{tag}{attrs}>")
    return out


def test_every_control_is_labelled_and_pages_are_well_formed(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca)
    record(site.console.register, accepted("Q1", site.clock(), disclosure={"family": "F-1"}))
    hold(site, "A0A0A0A0A0A1", MANAGER, consent="refused", reasons=["consent refused"])
    asked = requests.NewRequest("Cafcass", "phone", "2026-01-05", "Notes", STAFF, "F-1")
    request = requests.record(site.console.register, asked, date(2026, 1, 6))
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        client.post(
            "/contacts/new",
            data={
                "csrf": csrf,
                "kind": "address",
                "address": "j.smith@cafcass.example",
                "display_name": "Jo Smith",
                "organisation": "Cafcass",
                "verified_how": "phoned back",
            },
        )
        pages = {path: client.get(path) for path in PAGES}
        pages["/register/entry/N (a request)"] = client.get(f"/register/entry/{request}")
        client.post("/register/report", data={"csrf": csrf, "family": "F-1"})
        pages["/register/report (F-1)"] = client.get("/register/report")
        pages["/register/report/client-copy"] = client.get("/register/report/client-copy")
        assert 'id="client-copy"' in pages["/register/report/client-copy"].text
        pages["/signin"] = client.get("/signin")  # (signed in: it sends us on)
    with site.client() as client:  # the sender's own view: the withdraw form
        signed_in(client, MANAGER)
        pages["/held/A0A0A0A0A0A1 (sender)"] = client.get("/held/A0A0A0A0A0A1")
    with site.client() as client:  # a staff member's console: held messages only
        signed_in(client, STAFF, landing="/held")
        pages["/held (staff)"] = client.get("/held")
        pages["/requests/new (staff)"] = client.get("/requests/new")
        pages["/register (staff: forbidden)"] = client.get("/register")
    for path, reply in pages.items():
        assert reply.status_code == (403 if "forbidden" in path else 200), path
        html = reply.text
        assert _unlabelled(html) == [], path
        assert html.count("<h1") == 1, path
        assert '<html lang="en-GB">' in html
        assert '<a class="skip" href="#main">' in html and '<main id="main">' in html
        assert 'name="viewport"' in html


def test_print_stylesheet_hides_navigation_and_forms(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca)
    with site.client() as client:
        css = client.get("/static/console.css").text
    printed = css[css.index("@media print") :]
    for selector in ("header.top", ".verify", "form"):
        assert selector in printed.split("{")[1]  # the first rule inside @media print
    # Sizes in rem (not px) so the page reflows when zoomed.
    assert "font-size: 100%" in css and not re.search(r"font-size:\s*\d+px", css)
