"""Policy, "Inter-agency working": the answer to a request is about the family the request
was recorded for. A message tagged ``[request:N]`` without ``[family:...]`` takes the
request's family, so it is in that family's report; one naming another family is refused
at DATA (nothing sent) with a reply that says what to correct and repeats neither family.
Real SMTP through the gateway to a real TLS upstream; the request recorded by the CLI."""

from __future__ import annotations

import aiosmtplib
import pytest
from conftest import StartGateway
from support.contacts import approved
from support.harness import RunningGateway, message
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_sealed import keyring_for
from gateway.register.ledger import Register
from gateway.settings.register import register_settings
from gateway.store import Store

STAFF = "alice@c4f.example"
CONTACT = "j.smith@partner.example"
CHAIN = {"pipeline": {"filters": ["sender", "contacts", "disclosure"]}}


@pytest.fixture
async def gw(start_gateway: StartGateway, upstream: Upstream) -> RunningGateway:
    gw = await start_gateway(upstream=upstream, config=CHAIN)
    gw.add_staff(STAFF)
    repo = ContactRepository(gw.gateway.store, keyring=keyring_for(gw.settings))
    repo.add(approved(CONTACT, "Jane Smith", "Partner Org"), "Sam Admin")
    return gw


def _request(gw: RunningGateway, family: str) -> int:
    done = run_cli(
        "register", "request", "add", "--from", "Partner Org", "--via", "phone",
        "--nature", "Attendance", "--family", family, "--by", STAFF,
        "--config", gw.config_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[2].rstrip("."))


async def test_inter_agency_working_an_answer_takes_its_requests_family(
    gw: RunningGateway, upstream: Upstream
) -> None:
    number = _request(gw, "F-7")
    subject = f"Notes [consent:obtained] [request:{number}]"
    await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    await upstream.wait_for(1)
    reg = Register.from_settings(
        Store(gw.settings.storage.database), register_settings(gw.settings)
    )
    [answer] = [r for r in reg.records() if r.kind == "accepted"]
    assert (answer.family, answer.request) == ("F-7", number)
    report = run_cli("register", "report", "--family", "F-7", "--config", gw.config_path)
    assert f"entry {answer.seq}: sent" in report.stdout
    assert f"\n  Answered: entry {answer.seq}\n" in report.stdout  # under the request


async def test_inter_agency_working_an_answer_about_another_family_is_refused(
    gw: RunningGateway, upstream: Upstream
) -> None:
    number = _request(gw, "F-7")
    subject = f"Notes [consent:obtained] [family:F-8] [request:{number}]"
    with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
        await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=subject))
    assert caught.value.code == 550
    assert caught.value.message == (
        f"5.7.1 Request {number} was recorded for another family than [family:...] in the "
        "subject says: correct one of them, or leave [family:...] out to take the request's. "
        "Nothing was sent [ref DISC-REQUEST]"
    )
    assert "F-7" not in caught.value.message and "F-8" not in caught.value.message
    # The same family in other letters is the same family.
    same = f"Notes [consent:obtained] [family:f-7] [request:{number}]"
    await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=same))
    await upstream.wait_for(1)
    assert len(upstream.arrived) == 1
