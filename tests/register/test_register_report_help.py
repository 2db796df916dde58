"""``register report --help`` explains every option in words a manager reads, and agrees
with what the report does: the summary's first figure counts messages accepted from staff
(held ones included), and the client copy withholds child-protection entries too."""

from __future__ import annotations

import re

from support.subprocess_gateway import run_cli


def test_every_option_of_register_report_says_what_it_does() -> None:
    done = run_cli("register", "report", "--help")
    assert done.returncode == 0, done.stderr
    options = done.stdout.split("options:", 1)[1]
    described = " ".join(options.split())
    for option in ("--family REF", "--summary", "--since DATE", "--until DATE", "--output FILE"):
        assert re.search(rf"{re.escape(option)} [a-z-]", described), option
    assert "write to this file (default: stdout)" in described
    assert "safeguarding and child-protection entries withheld" in described
    description = " ".join(done.stdout.split("options:", 1)[0].split())
    assert "messages accepted from staff, held ones included" in description
