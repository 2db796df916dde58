"""Giving up: bounces with an RFC 3464 DSN to the staff sender (reliability-tests.md DUR-9).

A 5xx bounces at once; a 4xx that persists is retried with backoff and bounced at
``delivery.max_queue_age``. Both are recorded as Outcome events, and the DSN itself
(from ``<>``) is relayed through the same verified TLS as any message.
"""

from __future__ import annotations

import email
import itertools
import sqlite3
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

import pytest
from conftest import StartGateway
from support.delivery import (
    ALICE,
    BOB,
    CAROL,
    EventLog,
    relay_gateway,
    smarthost,
    smarthost_ca,
    submit,
    until,
)
from support.fakesmtp import Received, Script
from support.harness import message

from gateway.events import Accepted
from gateway.queue.dsn import build_bounce, permanent_status

SECRET = "Notes from the supervised contact on Tuesday."


def parse_dsn(dsn: Received) -> tuple[Message, list[Message]]:
    """The report and its parts, checked for the RFC 3464 shape."""
    assert dsn.mail_from == ""  # RFC 5321 4.5.5: a notification comes from the null path
    assert dsn.rcpt_tos == [ALICE]
    report = email.message_from_bytes(dsn.content, policy=default_policy)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"].addresses[0].addr_spec == ALICE
    assert report["Auto-Submitted"] == "auto-replied"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts][:2] == ["text/plain", "message/delivery-status"]
    return report, parts


def recipient_fields(status_part: Message) -> list[Message]:
    blocks = status_part.get_payload()
    assert isinstance(blocks, list)
    assert blocks[0]["Reporting-MTA"] == "dns; gateway.test"
    return blocks[1:]


@pytest.mark.parametrize("include_body", [False, True], ids=["headers-only", "with-body"])
async def test_dur9_5xx_bounces_at_once_with_a_dsn_to_the_sender(
    start_gateway: StartGateway, tmp_path: Path, include_body: bool
) -> None:
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    script = Script(rcpt_replies={BOB: "550 5.1.1 <bob@partner.test>: no such user"})
    async with await smarthost(ca, script) as fake:
        gw = await relay_gateway(
            start_gateway,
            fake,
            ca,
            log,
            config={"delivery": {"bounce_includes_body": include_body}},
        )
        qid = await submit(gw, [BOB], message(ALICE, [BOB], body=SECRET + "\n"))
        [dsn] = await fake.wait_for(1)
        await until(lambda: log.of(qid) and len(log.outcomes) == 2)
        assert log.statuses(qid) == [(1, "bounced")]
        assert log.of(qid)[0].reply == "550 5.1.1 <bob@partner.test>: no such user"
        # The DSN was accepted into the queue and its own delivery recorded (register).
        [bounce_accept] = [a for a in log.accepts if a.queue_id != qid]
        assert bounce_accept.staff == "" and bounce_accept.annotations == {"bounce_for": qid}
        assert log.statuses(bounce_accept.queue_id) == [(1, "delivered")]
        # It left like any message: MAIL FROM:<> inside verified TLS.
        mail_lines = [line for line in fake.transcript if line.verb == "MAIL"]
        assert [line.text.split()[1] for line in mail_lines] == [
            "FROM:<alice@c4f.example>",
            "FROM:<>",
        ]
        assert all(line.tls for line in mail_lines)
        _, parts = parse_dsn(dsn)
        [rcpt] = recipient_fields(parts[1])
        assert rcpt["Final-Recipient"] == "rfc822; bob@partner.test"
        assert rcpt["Action"] == "failed"
        assert rcpt["Status"] == "5.1.1"
        assert rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@partner.test>: no such user"
        assert qid in parts[0].get_content()
        if include_body:
            assert parts[2].get_content_type() == "message/rfc822"
            [returned] = parts[2].iter_parts()
            assert returned["Subject"] == "Visit notes"
            assert SECRET in returned.get_content()
        else:
            assert parts[2].get_content_type() == "text/rfc822-headers"
            assert "Subject: Visit notes" in parts[2].get_content()
            assert SECRET.encode() not in dsn.content  # the family's details stay here
        await until(lambda: gw.gateway.spool.rows() == [])  # the DSN, too


async def test_dur9_persistent_4xx_backs_off_then_bounces_at_max_age(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    script = Script(rcpt_replies={BOB: "451 4.2.1 mailbox busy, try later"})
    initial = 0.2  # the harness's retry_initial; retry_max is 1.0
    async with await smarthost(ca, script) as fake:
        gw = await relay_gateway(
            start_gateway, fake, ca, log, config={"delivery": {"max_queue_age": 1.2}}
        )
        qid = await submit(gw, [BOB, CAROL])
        await until(lambda: any(o.status == "bounced" for o in log.of(qid)))
        await fake.wait_for(2)  # CAROL's copy and the DSN
        outcomes = log.of(qid)
        delivered = [o for o in outcomes if o.status == "delivered"]
        deferred = [o for o in outcomes if o.status == "deferred"]
        [bounced] = [o for o in outcomes if o.status == "bounced"]
        assert [(o.attempt, o.recipients) for o in delivered] == [(1, (CAROL,))]
        assert [o.attempt for o in deferred] == list(range(1, len(deferred) + 1))
        assert len(deferred) >= 2
        assert all(o.recipients == (BOB,) for o in deferred)
        assert all(o.reply == "451 4.2.1 mailbox busy, try later" for o in deferred)
        # Exponential backoff: the n-th wait is at least retry_initial * 2**n (capped).
        times = [o.at for o in deferred] + [bounced.at]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for n, gap in enumerate(gaps):
            assert gap >= min(initial * 2**n, 1.0) * 0.99, gaps
        assert bounced.attempt == len(deferred) + 1
        assert bounced.recipients == (BOB,)
        assert bounced.reply == "gave up after 1.2 seconds; last reply: " + deferred[0].reply
        [accepted, _dsn_accepted] = log.accepts
        assert bounced.at - accepted.received_at >= 1.2  # not before the maximum age
        # ...nor much later: the next try after it (backoff capped by retry_max = 1.0).
        assert bounced.at - accepted.received_at < 1.2 + 1.0 + 1.0
        copy, dsn = fake.delivered()
        assert copy.rcpt_tos == [CAROL]
        _, parts = parse_dsn(dsn)
        [rcpt] = recipient_fields(parts[1])
        assert rcpt["Final-Recipient"] == "rfc822; bob@partner.test"
        assert rcpt["Action"] == "failed"
        assert rcpt["Status"] == "5.4.7"  # RFC 3463: delivery time expired
        assert "451 4.2.1 mailbox busy" in rcpt["Diagnostic-Code"]
        await until(lambda: gw.gateway.spool.rows() == [])  # the DSN, too


async def test_a_bounced_dsn_is_not_bounced_again(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """RFC 5321 4.5.5: no notification about a notification (no mail loops)."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    script = Script(
        rcpt_replies={BOB: "550 5.1.1 no such user", ALICE: "550 5.2.1 mailbox disabled"}
    )
    async with await smarthost(ca, script) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: len(log.outcomes) == 2)
        [dsn_id] = [a.queue_id for a in log.accepts if a.queue_id != qid]
        assert log.statuses(qid) == [(1, "bounced")]
        assert log.statuses(dsn_id) == [(1, "bounced")]
        await until(lambda: gw.gateway.spool.rows() == [])
        assert len(log.accepts) == 2  # the message and one DSN, no DSN of the DSN
        assert fake.delivered() == []


class FailingOnce(EventLog):
    """A register whose first append of a gateway-made message fails (cf. DUR-6)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        if event.staff == "" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("register unavailable")
        super().accepted(conn, event)


async def test_dsn_that_cannot_be_queued_keeps_the_recipient_queued(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """If the DSN cannot be queued, the failed recipient waits for the next try (the
    notice is not lost) and the recipient already delivered is not sent again."""
    ca = smarthost_ca(tmp_path)
    log = FailingOnce()
    script = Script(rcpt_replies={BOB: "550 5.1.1 no such user"})
    async with await smarthost(ca, script) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB, CAROL])
        await until(lambda: any(o.status == "bounced" for o in log.of(qid)))
        await fake.wait_for(2)
        assert log.failed
        assert sorted(log.statuses(qid)) == [(1, "deferred"), (1, "delivered"), (2, "bounced")]
        copy, dsn = fake.delivered()
        assert copy.rcpt_tos == [CAROL]
        assert dsn.mail_from == "" and dsn.rcpt_tos == [ALICE]
        rcpts = [line.text for line in fake.transcript if line.verb == "RCPT"]
        assert rcpts == [
            f"RCPT TO:<{BOB}>",
            f"RCPT TO:<{CAROL}>",
            f"RCPT TO:<{BOB}>",
            f"RCPT TO:<{ALICE}>",
        ]
        await until(lambda: gw.gateway.spool.rows() == [])


def test_dsn_returns_an_8bit_original_unchanged() -> None:
    original = "From: alice@c4f.example\r\nSubject: Grüße\r\n\r\nCafé\r\n".encode()
    dsn = build_bounce(
        hostname="gateway.test",
        sender="postmaster@c4f.example",
        queue_id="Q1",
        original_sender=ALICE,
        failed={BOB: ("5.1.1", "550 5.1.1 no such user")},
        original=original,
        include_body=True,
        arrival=0.0,
    )
    assert original in dsn
    report = email.message_from_bytes(dsn, policy=default_policy)
    assert not report.defects
    assert [p.get_content_type() for p in report.iter_parts()][2] == "message/rfc822"


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("550 5.1.1 no such user", "5.1.1"),
        ("554 5.7.1 relay denied", "5.7.1"),
        ("451 4.7.5 Server certificate not verified", "5.7.5"),  # final at max age
        ("550 mailbox unavailable", "5.0.0"),
        ("550-5.2.2 multi-line", "5.2.2"),
        ("gave up", "5.0.0"),
    ],
)
def test_permanent_status_of_a_reply(reply: str, status: str) -> None:
    assert permanent_status(reply) == status
