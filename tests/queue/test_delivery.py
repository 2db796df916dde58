"""The sending side end to end: retries, per-recipient outcomes, evidence, smarthost AUTH.

Reliability-tests.md TLS-6 and DUR-8, plus issue 2's "4xx then 2xx -> delivered once".
The gateway is real (port 0, SQLite, spool), the smarthost is ``support.fakesmtp``, and
the outcomes are read from a real recorder (``EventLog``), as the register would see them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import StartGateway
from support.delivery import (
    ALICE,
    BOB,
    CAROL,
    SMARTHOST,
    EventLog,
    fingerprint,
    relay_gateway,
    smarthost,
    smarthost_ca,
    submit,
    until,
)
from support.fakesmtp import FakeSmarthost, Script

from gateway.errors import ConfigError
from gateway.queue.smtp_transport import SmtpTransport
from gateway.settings import Upstream


async def test_4xx_then_2xx_is_delivered_exactly_once(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(data_replies=["451 4.3.0 try again later"])) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await fake.wait_for(1)
        await until(lambda: len(log.of(qid)) == 2)
        assert log.statuses(qid) == [(1, "deferred"), (2, "delivered")]
        assert log.of(qid)[0].reply == "451 4.3.0 try again later"
        assert gw.gateway.spool.rows() == []  # done: nothing left that could be sent again
        assert [m.answered for m in fake.messages] == [
            "451 4.3.0 try again later",
            "250 2.0.0 stored as M2",
        ]
        assert len(fake.delivered()) == 1


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
async def test_outcome_carries_tls_evidence_of_the_upstream_certificate(
    start_gateway: StartGateway, tmp_path: Path, implicit: bool
) -> None:
    """Issue 2: each outcome keeps host, TLS version, cipher and the certificate's SHA-256."""
    ca = smarthost_ca(tmp_path)
    cert = ca.issue(SMARTHOST)
    log = EventLog()
    async with await smarthost(ca, Script(implicit=implicit), cert=cert) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        [outcome] = log.of(qid)
        assert outcome.status == "delivered"
        assert outcome.reply == "250 2.0.0 stored as M1"
        ev = outcome.evidence
        assert ev.host == f"127.0.0.1:{fake.port}"
        assert ev.tls_version in ("TLSv1.2", "TLSv1.3")
        assert ev.cipher
        assert ev.cert_sha256 == fingerprint(cert)
        assert len(ev.cert_sha256) == 64


async def test_per_recipient_results_one_delivered_one_bounced(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    script = Script(rcpt_replies={BOB: "550 5.1.1 <bob@partner.test>: no such user"})
    async with await smarthost(ca, script) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB, CAROL])
        await until(lambda: len(fake.delivered()) == 2)  # CAROL's copy, then the DSN
        await until(lambda: len(log.of(qid)) == 2)
        by_status = {o.status: o for o in log.of(qid)}
        assert set(by_status) == {"delivered", "bounced"}
        assert by_status["delivered"].recipients == (CAROL,)
        assert by_status["delivered"].reply == "250 2.0.0 stored as M1"
        assert by_status["bounced"].recipients == (BOB,)
        assert by_status["bounced"].reply == "550 5.1.1 <bob@partner.test>: no such user"
        copy, dsn = fake.delivered()
        assert (copy.mail_from, copy.rcpt_tos) == (ALICE, [CAROL])
        assert (dsn.mail_from, dsn.rcpt_tos) == ("", [ALICE])
        assert b"Final-Recipient: rfc822; bob@partner.test" in dsn.content
        assert b"carol" not in dsn.content.split(b"text/rfc822-headers")[0]
        await until(lambda: gw.gateway.spool.rows() == [])  # the DSN, too


async def test_tls6_line_dies_after_the_dot_is_deferred_then_retried(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """TLS-6: TLS dies after the final dot, before the 250 -> deferred, not delivered; the
    retry is recorded. At-least-once: the smarthost saw the bytes twice (DUR-7, RFC 1047)."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(drop_after_dot=1)) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        [first] = log.of(qid)
        assert (first.attempt, first.status) == (1, "deferred")
        assert first.reply.startswith("451 4.4.2 upstream 127.0.0.1:")
        assert first.evidence.cert_sha256  # TLS was up when the line died
        [row] = gw.gateway.spool.rows()
        assert (row.state, row.pending) == ("queued", 1)
        await fake.wait_for(1)
        await until(lambda: len(log.of(qid)) == 2)
        assert log.statuses(qid) == [(1, "deferred"), (2, "delivered")]
        assert [m.answered for m in fake.messages] == ["", "250 2.0.0 stored as M2"]
        assert fake.messages[0].content == fake.messages[1].content


def credentials_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "upstream.credentials"
    path.write_text(text)
    path.chmod(mode)
    return path


async def test_tls6_smarthost_auth_only_inside_verified_tls(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """TLS-6: AUTH (credentials from a 0600 file) only after the certificate verified,
    though this smarthost offers AUTH in clear too."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    creds = credentials_file(tmp_path, "relay@c4f.example\nrelay-secret\n")
    async with await smarthost(ca, Script(auth=("relay@c4f.example", "relay-secret"))) as fake:
        gw = await relay_gateway(
            start_gateway, fake, ca, log, upstream={"credentials_file": str(creds)}
        )
        qid = await submit(gw, [BOB])
        await fake.wait_for(1)
        await until(lambda: log.of(qid))
        assert log.statuses(qid) == [(1, "delivered")]
        assert fake.verbs(tls=False) == ["EHLO", "STARTTLS"]
        assert fake.verbs(tls=True)[:5] == ["EHLO", "AUTH", "MAIL", "RCPT", "DATA"]


async def test_tls6_wrong_smarthost_password_defers_without_mail(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    creds = credentials_file(tmp_path, "relay@c4f.example\nnot-the-password\n")
    async with await smarthost(ca, Script(auth=("relay@c4f.example", "relay-secret"))) as fake:
        gw = await relay_gateway(
            start_gateway, fake, ca, log, upstream={"credentials_file": str(creds)}
        )
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        outcome = log.of(qid)[0]
        assert outcome.status == "deferred"  # our setting is wrong, not the message
        assert outcome.reply.startswith("451 4.7.8 upstream 127.0.0.1 refused our login: 535")
        assert "MAIL" not in fake.verbs()
        assert "AUTH" not in fake.verbs(tls=False)


@pytest.mark.parametrize(
    ("text", "mode", "reason"),
    [
        ("relay\nsecret\n", 0o644, "must not be readable by group or others"),
        ("relay-only\n", 0o600, "expected two lines"),
    ],
)
async def test_tls6_credentials_file_is_checked_at_start(
    start_gateway: StartGateway, tmp_path: Path, text: str, mode: int, reason: str
) -> None:
    ca = smarthost_ca(tmp_path)
    creds = credentials_file(tmp_path, text, mode)
    async with await smarthost(ca) as fake:
        with pytest.raises(ConfigError, match=reason):
            await relay_gateway(
                start_gateway, fake, ca, EventLog(), upstream={"credentials_file": str(creds)}
            )


async def test_dur8_late_reply_to_the_dot_is_waited_for_not_resent(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """DUR-8: the reply to the final dot comes late but within upstream.timeout -> we
    wait; one connection, one DATA, one delivery (RFC 5321 4.5.3.2.6; RFC 1047)."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(final_delays=[1.5])) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log, upstream={"timeout": 4.0})
        qid = await submit(gw, [BOB])
        await fake.wait_for(1)
        await until(lambda: log.of(qid))
        assert log.statuses(qid) == [(1, "delivered")]
        assert fake.connections == 1
        assert fake.verbs().count("DATA") == 1
        assert gw.gateway.spool.rows() == []


async def test_dur8_reply_later_than_the_timeout_defers_and_is_sent_again(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The other side of DUR-8: past upstream.final_reply_timeout we give up and retry, so
    the smarthost gets the message twice (at-least-once): why that wait is 10 minutes."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(final_delays=[1.0])) as fake:
        upstream = {"timeout": 0.4, "final_reply_timeout": 0.4}
        gw = await relay_gateway(start_gateway, fake, ca, log, upstream=upstream)
        qid = await submit(gw, [BOB])
        await until(lambda: len(log.of(qid)) == 2)
        assert log.statuses(qid) == [(1, "deferred"), (2, "delivered")]
        assert "Timed out" in log.of(qid)[0].reply
        assert fake.verbs().count("DATA") == 2


CONTENT = b"Subject: x\r\n\r\nhi\r\n"


def transport_to(fake: FakeSmarthost, ca_file: Path) -> SmtpTransport:
    upstream = Upstream(
        host="127.0.0.1", port=fake.port, tls_name=SMARTHOST, ca_file=ca_file, timeout=5.0
    )
    return SmtpTransport(upstream, "gateway.test")


async def test_envelope_addresses_leave_exactly_as_stored(tmp_path: Path) -> None:
    """REL-3 on the way out: no re-parsing. aiosmtplib's sendmail would send
    ``"x@partner.test"<evil@elsewhere.test>`` as ``<evil@elsewhere.test>``."""
    ca = smarthost_ca(tmp_path)
    odd = ['"x@partner.test"@partner.test', "x(comment)@partner.test", "jörg@partner.test"]
    async with await smarthost(ca) as fake:
        result = await transport_to(fake, ca.ca_file).send(ALICE, odd, CONTENT)
    assert all(code == 250 for code, _ in result.replies.values())
    rcpt_lines = [line.text for line in fake.transcript if line.verb == "RCPT"]
    assert rcpt_lines == [f"RCPT TO:<{a}>" for a in odd]
    [mail] = [line.text for line in fake.transcript if line.verb == "MAIL"]
    # RFC 6531 3.4: a non-ASCII mailbox needs SMTPUTF8 (which this smarthost offers).
    assert mail == f"MAIL FROM:<{ALICE}> SIZE={len(CONTENT)} SMTPUTF8"


async def test_unsafe_address_is_refused_without_a_command(tmp_path: Path) -> None:
    ca = smarthost_ca(tmp_path)
    async with await smarthost(ca) as fake:
        result = await transport_to(fake, ca.ca_file).send(
            ALICE, ["bob@partner.test> NOTIFY=NEVER", CAROL], CONTENT
        )
        await fake.wait_for(1)
    assert result.replies["bob@partner.test> NOTIFY=NEVER"][0] == 553
    assert result.replies[CAROL] == (250, "2.0.0 stored as M1")
    assert [line.text for line in fake.transcript if line.verb == "RCPT"] == [f"RCPT TO:<{CAROL}>"]


async def test_8bit_content_is_declared_8bitmime(tmp_path: Path) -> None:
    ca = smarthost_ca(tmp_path)
    content = "Subject: x\r\n\r\nGrüße\r\n".encode()
    async with await smarthost(ca) as fake:
        await transport_to(fake, ca.ca_file).send(ALICE, [BOB], content)
        [arrived] = await fake.wait_for(1)
    assert arrived.content == content
    [mail] = [line.text for line in fake.transcript if line.verb == "MAIL"]
    assert mail == f"MAIL FROM:<{ALICE}> SIZE={len(content)} BODY=8BITMIME"
