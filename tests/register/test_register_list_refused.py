"""A refused message says why in the register list's notes, on the command line and in
the console, so a manager reading the list need not open each refusal."""

from __future__ import annotations

from pathlib import Path

from support.pki import TestCA
from support.register import record, refused
from support.subprocess_gateway import run_cli
from support.web import ADMIN, make_site, signed_in

from gateway.register.formats import refusal_words


def test_a_refusal_gives_its_reason_in_the_list(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca)
    record(site.console.register, refused("Q1", site.clock()))  # "Fax routes are not allowed"
    done = run_cli("register", "list", "--config", site.settings.source)
    assert done.returncode == 0, done.stderr
    [row] = [line for line in done.stdout.splitlines() if "x@fax.example" in line]
    assert row.rstrip().endswith("refused: Fax routes are not allowed")
    with site.client() as client:
        signed_in(client, ADMIN)  # a manager sees only their reports: alice is nobody's
        page = client.get("/register").text
    assert "<td>refused: Fax routes are not allowed</td>" in page


def test_the_reason_is_the_replys_first_clause_without_codes() -> None:
    assert refusal_words("550 5.7.1 Fax routes are not allowed [ref R-1A2B]") == (
        "Fax routes are not allowed"
    )
    long = (
        "550 5.7.1 Recipient is not an approved contact; check the address, or ask an "
        "admin to approve it [ref R-A1AF]"
    )
    assert refusal_words(long) == "Recipient is not an approved contact"
    request = "550 5.7.1 Request 9 is not a request in the register: record it first [ref X]"
    assert refusal_words(request) == "Request 9 is not a request in the register"
    assert refusal_words("550 5.7.1 " + "x" * 80).endswith("…")
