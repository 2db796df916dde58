"""Policy, "Inter-agency working": "When C4F receives a request for information, the person
receiving the request must record details of the agency or person making it and the nature
of the information being requested."

A request that came by phone is recorded with ``c4f-gateway register request add`` (its own
process, on the running gateway's config and database), answered by a message tagged
``[request:N]`` sent through the gateway over real SMTP to a real TLS upstream, and then
read back with ``register show``, ``register report --family`` and ``register export``. A
``[request:N]`` naming no request is refused at DATA with a reply the sender can act on.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import aiosmtplib
import pytest
from conftest import StartGateway
from support.contacts import approved
from support.delivery import until
from support.harness import RunningGateway, message
from support.register import T0, accepted, make_register, record
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_sealed import keyring_for
from gateway.events import HoldEvent
from gateway.register.ledger import Register, RegisterError
from gateway.register.purge import purge
from gateway.register.requests import CLAUSE, NewRequest, family_of
from gateway.register.requests import record as record_request
from gateway.settings.register import register_settings
from gateway.store import Store

STAFF = "alice@c4f.example"
CONTACT = "j.smith@partner.example"
CHAIN = {"pipeline": {"filters": ["sender", "contacts", "disclosure"]}}
ERROR = "c4f-gateway register: error: "


@pytest.fixture
async def gw(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(STAFF)
    repo = ContactRepository(gw.gateway.store, keyring=keyring_for(gw.settings))
    repo.add(approved(CONTACT, "Jane Smith", "Partner Org"), "Sam Admin")  # C-001
    return gw


def cli(gw: RunningGateway, *args: str) -> tuple[int, str, str]:
    done = run_cli("register", *args, "--config", gw.config_path)
    return done.returncode, done.stdout, done.stderr


def add_request(gw: RunningGateway, *extra: str) -> tuple[int, str, str]:
    return cli(gw, "request", "add", *extra)


def entries(gw: RunningGateway) -> Register:
    return Register.from_settings(
        Store(gw.settings.storage.database), register_settings(gw.settings)
    )


async def refused_reply(gw: RunningGateway, subject: str) -> aiosmtplib.SMTPResponseException:
    with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
        await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    return caught.value


async def test_inter_agency_working_a_phone_request_answered_by_a_tagged_message(
    gw: RunningGateway, upstream: Upstream
) -> None:
    received = (date.today() - timedelta(days=2)).isoformat()
    code, out, err = add_request(
        gw,
        "--from",
        "Jane Smith, social worker",
        "--contact",
        "C-001",
        "--via",
        "phone",
        "--received",
        received,
        "--nature",
        "Notes of supervised contact since June",
        "--family",
        "F-1042",
        "--by",
        STAFF,
    )
    assert (code, err) == (0, "")
    found = re.fullmatch(r"Recorded request (\d+)\.\nPut \[request:\1\] in the subject .*\n", out)
    assert found is not None, out
    number = int(found.group(1))

    subject = f"[consent:obtained] [family:F-1042] [request:{number}] Contact notes"
    errors, reply = await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    assert errors == {} and reply.startswith("2.0.0 Queued as ")
    [arrived] = await upstream.wait_for(1)
    assert b"\r\nSubject: Contact notes\r\n" in arrived.content
    assert b"request" not in arrived.content.lower()

    reg = entries(gw)
    await until(
        lambda: [r for r in reg.records() if r.kind == "accepted" and r.status == "delivered"]
    )
    [request] = [r for r in reg.records() if r.kind == "request"]
    [answer] = [r for r in reg.records() if r.kind == "accepted"]
    assert (request.seq, request.answers, answer.request) == (number, [answer.seq], number)
    # Sealed like every entry: nothing of the request in its plain columns.
    [row] = reg.store.query("SELECT public, queue_id FROM register WHERE seq = ?", (number,))
    assert (row["public"], row["queue_id"]) == ("{}", "")

    code, out, _ = cli(gw, "show", str(number))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Entry {number}: request received"
    for label, value in (
        ("Requester", "Jane Smith, social worker (Partner Org, contact C-001)"),
        ("How it arrived", "by phone"),
        ("Date received", received),
        ("Information requested", "Notes of supervised contact since June"),
        ("Family reference", "F-1042"),
        ("Taken by", STAFF),
        ("Answered by", f"entry {answer.seq}"),
    ):
        assert f"  {label + ':':<23}{value}" in lines, (label, out)
    code, out, _ = cli(gw, "show", str(answer.seq))
    assert code == 0
    assert f"  {'Answers request:':<23}entry {number}" in out.splitlines()

    code, report, _ = cli(gw, "report", "--family", "F-1042")
    assert code == 0
    assert CLAUSE in report.splitlines()
    block = report.split(f"entry {number}: request received\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == [
        f"  From:     Jane Smith, social worker (Partner Org, contact C-001), by phone, "
        f"received {received}",
        "  Wanted:   Notes of supervised contact since June",
        f"  Taken by: {STAFF}",
        f"  Answered: entry {answer.seq}",
    ]
    sent = report.split(f"entry {answer.seq}: sent\n", 1)[1].split("\n\n", 1)[0]
    assert f"  Answers:  request {number}" in sent.splitlines()

    code, text, _ = cli(gw, "export", "--format", "csv", "--family", "F-1042")
    assert code == 0
    rows = {row["entry"]: row for row in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {str(number), str(answer.seq)}
    asked = rows[str(number)]
    assert (asked["decision"], asked["received_via"], asked["received_on"]) == (
        "request received",
        "phone",
        received,
    )
    assert asked["requester"] == "Jane Smith, social worker (Partner Org, contact C-001)"
    assert (asked["nature"], asked["family"], asked["staff"], asked["answers"]) == (
        "Notes of supervised contact since June",
        "F-1042",
        STAFF,
        str(answer.seq),
    )
    assert (rows[str(answer.seq)]["decision"], rows[str(answer.seq)]["request"]) == (
        "accepted",
        str(number),
    )


async def test_inter_agency_working_an_unknown_request_number_is_refused(
    gw: RunningGateway, upstream: Upstream
) -> None:
    refused = await refused_reply(gw, "[consent:obtained] [request:99] Contact notes")
    assert refused.code == 550
    assert refused.message == (
        "5.7.1 Request 99 is not a request in the register: record the request first "
        "(c4f-gateway register request add, or Record a request in the console) or correct "
        "the number in [request:N]. Nothing was sent [ref DISC-REQUEST]"
    )
    # A message's own entry number is not a request either.
    await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject="[consent:obtained] Hi"))
    await upstream.wait_for(1)
    reg = entries(gw)
    [sent] = [r for r in reg.records() if r.kind == "accepted"]
    refused = await refused_reply(gw, f"[consent:obtained] [request:{sent.seq}] Notes")
    assert refused.code == 550
    assert refused.message.startswith(f"5.7.1 Request {sent.seq} is not a request")
    assert len(upstream.arrived) == 1
    kept = [r for r in reg.records() if r.kind == "refused"]
    assert [(r.data["phase"], r.data["reference"]) for r in kept] == [
        ("data", "DISC-REQUEST"),
        ("data", "DISC-REQUEST"),
    ]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("--received", "2026-13-01"), "'2026-13-01' is not a date (YYYY-MM-DD)"),
        (("--received", "2999-01-01"), "the request cannot be received after today"),
        (("--contact", "C-099"), "--contact: there is no contact C-099 (see `contacts list`)"),
        (("--family", "F 1042"), "'F 1042' is not a family reference (letters, digits, . _ / -)"),
        (("--by", "nobody@c4f.example"), "--by: nobody@c4f.example is not a staff account"),
        (("--from", "  "), "say who made the request: an agency or a person"),
    ],
)
async def test_request_add_refuses_what_it_cannot_record_in_one_line(
    gw: RunningGateway, argv: tuple[str, ...], error: str
) -> None:
    given = dict(zip(argv[::2], argv[1::2], strict=True))
    base = {"--from": "Cafcass", "--via": "letter", "--nature": "Reports", "--by": STAFF}
    args = [x for k, v in {**base, **given}.items() for x in (k, v)]
    code, out, err = add_request(gw, *args)
    assert (code, out) == (2, "")
    assert err.startswith(ERROR + error) and err.count("\n") == 1, err
    assert [r for r in entries(gw).records() if r.kind == "request"] == []


async def test_request_add_help_and_a_wrong_via(gw: RunningGateway) -> None:
    code, out, _ = add_request(gw, "--help")
    assert code == 0
    for words in (
        "--from TEXT",
        "--via {phone,letter,email,in-person}",
        "--by LOGIN",
        "[request:N]",
    ):
        assert words in " ".join(out.split()), words
    code, _, err = add_request(gw, "--from", "X", "--via", "fax", "--nature", "Y", "--by", STAFF)
    assert code == 2
    assert "argument --via: invalid choice: 'fax'" in err


def test_inter_agency_working_a_message_refused_by_a_manager_answers_nothing(
    tmp_path: Path,
) -> None:
    reg = make_register(tmp_path)
    asked = NewRequest("Cafcass", "email", "2023-11-10", "Reports", STAFF, "F-1042")
    number = record_request(reg, asked, date(2023, 11, 14))
    tagged = {"consent": "refused", "reason": "Court", "request": number, "external": True}
    record(reg, accepted("Q1", disclosure=tagged))
    record(reg, accepted("Q2", disclosure=tagged))
    with reg.store.transaction() as conn:
        reg.hold(conn, HoldEvent("Q1", T0 + 60, "held", "", reasons=("consent refused",)))
        reg.hold(conn, HoldEvent("Q1", T0 + 120, "refused", "mona@c4f.example", note="No"))
    request = next(r for r in reg.records() if r.kind == "request")
    sent = next(r for r in reg.records() if r.kind == "accepted" and r.entry.queue_id == "Q2")
    assert request.answers == [sent.seq]
    assert request.status == "answered"


def test_family_of_reads_the_request_as_corrected_and_refuses_what_cannot_be_answered(
    tmp_path: Path,
) -> None:
    # What the disclosure filter asks at DATA for [request:N]: the family the request is
    # about now (a follow-up may have corrected it), or why nothing can answer N.
    reg = make_register(tmp_path)
    asked = NewRequest("Cafcass", "email", "2023-11-10", "Reports", STAFF, "F-1042")
    number = record_request(reg, asked, date(2023, 11, 14))
    assert family_of(reg, number) == "F-1042"
    reg.annotate(number, "mona", family="F-1043")
    assert family_of(reg, number) == "F-1043"
    record(reg, accepted("Q1"))
    [message_entry] = [r.seq for r in reg.records() if r.kind == "accepted"]
    for not_one in (message_entry, number + 1, 999):  # a message, a follow-up, nothing
        with pytest.raises(RegisterError, match=rf"^Request {not_one} is not a request"):
            family_of(reg, not_one)
    purge(reg, actor="mona", only=number)
    with pytest.raises(RegisterError, match=rf"^Request {number} was purged from the register"):
        family_of(reg, number)
