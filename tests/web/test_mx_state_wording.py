"""``contacts list`` and the console word a contact's MX state the same way: one function
(:func:`gateway.directory.mx_state.mx_states`) for both, checked on one database."""

from __future__ import annotations

import html
import re
from pathlib import Path

from support.pki import TestCA
from support.subprocess_gateway import run_cli
from support.web import ADMIN, FakeResolver, add_contact, make_site, signed_in

FAX = "fax route by DNS: MX in.efaxsend.com belongs to fax service efaxsend.com"
MOVED = "MX hosts changed: mx.old.example -> mx.new.example"
NO_MX = "the domain takes no mail (no MX)"


def test_contacts_list_and_the_console_agree_on_the_mx_state(tmp_path: Path, ca: TestCA) -> None:
    zones = {
        "ok.example": ["10 mx.ok.example."],
        "moving.example": ["10 mx.old.example."],
        "sneaky.example": ["10 in.efaxsend.com."],  # mail really goes to a fax service
        "closing.example": ["10 mx.closing.example."],
    }
    resolver = FakeResolver(zones)
    site = make_site(tmp_path / "gw", ca, resolver=resolver)
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        for address in ("jo@ok.example", "al@moving.example", "sam@sneaky.example"):
            added = add_contact(client, csrf, address)
            assert added.status_code == 303, added.text
        added = add_contact(
            client,
            csrf,
            "closing.example",
            kind="domain",
            display_name="Closing office",
            organisation="Closing Ltd",
            verified_how="letter on headed paper",
        )
        assert added.status_code == 303, added.text
        # The domains move on after approval; the console's sweep sees it.
        zones["moving.example"] = ["10 mx.new.example."]
        del zones["closing.example"]
        client.post("/contacts/check-mx", data={"csrf": csrf})
        page = client.get("/contacts").text

    console = {
        ref: [html.unescape(w) for w in re.findall(r'<span class="warning">([^<]*)</span>', row)]
        for ref, row in re.findall(
            r'<td><a href="/contacts/\d+">(C-\d+)</a></td>(.*?)</tr>', page, re.S
        )
    }
    assert console == {"C-001": [], "C-002": [MOVED], "C-003": [FAX], "C-004": [NO_MX]}

    done = run_cli("contacts", "list", "--config", site.settings.source)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    details = [ln for ln in lines if re.match(r"C-\d+ [a-z-]+: ", ln)]
    # Table rows: REF, ADDRESS or DOMAIN, ..., STATE last.
    states = {ln.split()[0]: ln.split()[-1] for ln in lines if re.match(r"C-\d+  ", ln)}
    assert details == [
        f"C-002 mx-changed: {MOVED}",
        f"C-003 fax-mx: {FAX}",
        f"C-004 no-mx: {NO_MX}",
    ]
    assert states["C-001"] == "ok"
    assert states["C-002"] == "ok,mx-changed"
    assert states["C-003"] == "ok,fax-mx"
    assert states["C-004"] == "ok,no-mx"
    # The words the console shows are the words the CLI prints, contact by contact.
    for ref, words in console.items():
        assert [ln.split(": ", 1)[1] for ln in details if ln.startswith(ref + " ")] == words
