"""Approvers read what they decide: the held message's text and attachments.

Through the running gateway (real SMTP, the approval filter holds the message) and the
CLI in its own process: ``held show ID --by LOGIN --body`` prints the text (an HTML-only
message as plain text, nothing of its markup run or hidden), each attachment's name,
type and size, and the register's admin trail records who read it. The console's page
and downloads are in tests/web/test_web_held_browser.py.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest
from conftest import StartGateway
from support.harness import RunningGateway
from support.held import PDF, html_message, queue_id
from support.subprocess_gateway import run_cli as run_command
from support.upstream import Upstream

from gateway.mail.readable import attachment, readable
from gateway.register.criteria import Filters

STAFF = "alice@c4f.example"
MANAGER = "mona@c4f.example"
OTHER = "olga@c4f.example"  # a manager, not Alice's
CONTACT = "j.smith@partner.example"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval", "disclaimer"]}}


async def run_cli(*args: str) -> tuple[int, str, str]:
    """``c4f-gateway ARGS`` in its own process; the gateway keeps running."""
    done = await asyncio.to_thread(run_command, *args)
    return done.returncode, done.stdout, done.stderr


def test_readable_prefers_plain_text_and_reads_html_as_text() -> None:
    msg = html_message(STAFF, CONTACT)
    content = bytes(msg)
    r = readable(content)
    assert r.from_html
    assert r.text.splitlines() == [
        "Notes for the court & the family's social worker.",
        "",
        "Shown as text: <img src=x onerror=alert(2)>",
    ]
    assert [(a.number, a.name, a.content_type, a.size) for a in r.attachments] == [
        (1, "bundle.pdf", "application/pdf", len(PDF))
    ]
    found = attachment(content, 1)
    assert found is not None and found[1] == PDF
    assert attachment(content, 2) is None
    both = EmailMessage()
    both.set_content("The plain text.\n")
    both.add_alternative("<p>The HTML.</p>", subtype="html")
    assert (readable(bytes(both)).text, readable(bytes(both)).from_html) == (
        "The plain text.\n",
        False,
    )


@pytest.fixture
async def gw(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(OTHER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    return gw


async def test_held_show_body_prints_the_text_and_records_the_reading(gw: RunningGateway) -> None:
    errors, reply = await gw.send(STAFF, [CONTACT], html_message(STAFF, CONTACT))
    assert errors == {} and "held for approval" in reply
    qid = queue_id(reply)
    config = str(gw.config_path)

    code, out, err = await run_cli(
        "held", "show", qid, "--by", MANAGER, "--body", "--config", config
    )
    assert code == 0, err
    assert "Subject:          Court notes" in out
    text = out.split("Text (the HTML part as plain text):\n", 1)[1]
    assert text.splitlines()[1:4] == [
        "Notes for the court & the family's social worker.",
        "",
        "Shown as text: <img src=x onerror=alert(2)>",
    ]
    assert "script text" not in out and "hidden title" not in out and "color:red" not in out
    assert f"  1. bundle.pdf (application/pdf, {len(PDF):,} bytes)" in out

    # Without --body, nothing is read; a manager who is not Alice's reads nothing.
    code, out, _ = await run_cli("held", "show", qid, "--by", MANAGER, "--config", config)
    assert code == 0 and "Notes for the court" not in out
    code, out, err = await run_cli("held", "show", qid, "--by", OTHER, "--body", "--config", config)
    assert code == 2 and "may not see" in err and "Notes for the court" not in out

    register = gw.gateway.register
    assert register is not None
    reads = [
        (r.data["actor"], r.data["details"])
        for r in register.records(Filters(kinds=("admin",)))
        if r.data["action"] == "held message read"
    ]
    assert reads == [(MANAGER, {"queue_id": qid, "read": "text"})]
