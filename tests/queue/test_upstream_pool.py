"""Issue 16, "upstream connections kept": several messages per verified TLS connection.

The smarthost is ``support.fakesmtp`` (a real server on port 0, with a certificate from
its own test CA), which counts connections and keeps every command line, so each test
reads how many connections were opened and what went over them. The transport is the
real one; the end-to-end tests run a real gateway with its real disclosure register.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from support.harness import RunningGateway

from gateway.errors import ConfigError, TempFailure
from gateway.queue.smtp_transport import SmtpTransport
from gateway.settings import Upstream, load

CONTENT = b"Subject: x\r\n\r\nhi\r\n"


def pooled(fake: FakeSmarthost, ca_file: Path, **pool: Any) -> SmtpTransport:
    upstream = Upstream(
        host="127.0.0.1", port=fake.port, tls_name=SMARTHOST, ca_file=ca_file, timeout=5.0, **pool
    )
    return SmtpTransport(upstream, "gateway.test")


def session_verbs(fake: FakeSmarthost) -> list[str]:
    """The commands sent over TLS, in order."""
    return fake.verbs(tls=True)


async def test_messages_share_one_connection_with_rset_between(tmp_path: Path) -> None:
    ca = smarthost_ca(tmp_path)
    cert = ca.issue(SMARTHOST)
    async with await smarthost(ca, Script(auth=("relay", "secret")), cert=cert) as fake:
        transport = pooled(fake, ca.ca_file)
        transport.credentials = ("relay", "secret")
        results = [await transport.send(ALICE, [BOB], CONTENT) for _ in range(5)]
        assert fake.connections == 1
        assert transport.pool.idle == 1
        await transport.close()
        await until(lambda: fake.verbs()[-1:] == ["QUIT"])
    # One handshake, one login; then each message is MAIL RCPT DATA, RSET before the next.
    assert fake.verbs(tls=False) == ["EHLO", "STARTTLS"]
    assert session_verbs(fake) == [
        "EHLO",
        "AUTH",
        *(["MAIL", "RCPT", "DATA"] + ["RSET", "MAIL", "RCPT", "DATA"] * 4),
        "QUIT",
    ]
    assert [m.answered for m in fake.messages] == [f"250 2.0.0 stored as M{i}" for i in range(1, 6)]
    for r in results:  # each message keeps the evidence of the connection it went over
        assert r.replies == {BOB: (250, r.final_reply[4:])}
        assert r.evidence.tls_version.startswith("TLSv1.")
        assert r.evidence.cipher
        assert r.evidence.cert_sha256 == fingerprint(cert)


async def test_max_messages_per_connection_then_a_new_one(tmp_path: Path) -> None:
    ca = smarthost_ca(tmp_path)
    async with await smarthost(ca) as fake:
        transport = pooled(fake, ca.ca_file, pool_max_messages=2)
        for _ in range(3):
            await transport.send(ALICE, [BOB], CONTENT)
        await until(lambda: fake.verbs().count("QUIT") == 1)  # the first, after two
        assert fake.connections == 2
        assert fake.verbs().count("MAIL") == 3
        assert fake.verbs().count("RSET") == 1
        await transport.close()


async def test_idle_timeout_quits_the_connection(tmp_path: Path) -> None:
    ca = smarthost_ca(tmp_path)
    async with await smarthost(ca) as fake:
        transport = pooled(fake, ca.ca_file, pool_idle_seconds=0.3)
        await transport.send(ALICE, [BOB], CONTENT)
        assert transport.pool.idle == 1
        assert "QUIT" not in fake.verbs()
        await until(lambda: fake.verbs()[-1:] == ["QUIT"], timeout=5)
        assert transport.pool.idle == 0
        result = await transport.send(ALICE, [CAROL], CONTENT)
        assert result.replies[CAROL][0] == 250
        assert fake.connections == 2
        assert "RSET" not in fake.verbs()  # the second message went over a new connection
        await transport.close()


async def test_pool_off_opens_a_connection_per_message_and_resumes_tls(tmp_path: Path) -> None:
    """pool_idle_seconds = 0: one message per connection, QUIT after it. Each new
    connection resumes the TLS session of the last, and the register's evidence still
    names the certificate (a resumed session does not send it again)."""
    ca = smarthost_ca(tmp_path)
    cert = ca.issue(SMARTHOST)
    async with await smarthost(ca, cert=cert) as fake:
        transport = pooled(fake, ca.ca_file, pool_idle_seconds=0)
        results = [await transport.send(ALICE, [BOB], CONTENT) for _ in range(3)]
        await until(lambda: fake.verbs().count("QUIT") == 3)
        assert fake.connections == 3
        assert transport.pool.idle == 0
    assert fake.resumed == [False, True, True]
    assert [r.evidence.cert_sha256 for r in results] == [fingerprint(cert)] * 3
    assert all(r.evidence.tls_version and r.evidence.cipher for r in results)


async def test_a_session_is_offered_only_under_the_name_it_was_verified_for(
    tmp_path: Path,
) -> None:
    """A resumed handshake checks no certificate, so a session stands in for
    verification only for the name it was verified for: asked to verify another name,
    the same server is refused (TLS-3) and nothing is sent."""
    ca = smarthost_ca(tmp_path)
    async with await smarthost(ca) as fake:
        transport = pooled(fake, ca.ca_file, pool_idle_seconds=0)
        await transport.send(ALICE, [BOB], CONTENT)
        await transport.send(ALICE, [BOB], CONTENT)
        assert fake.resumed == [False, True]
        transport.tls_name = "other.test"  # not in the certificate
        with pytest.raises(TempFailure, match="certificate not verified"):
            await transport.send(ALICE, [BOB], CONTENT)
        assert fake.verbs().count("MAIL") == 2
        assert fake.resumed == [False, True]  # the third handshake did not complete


async def test_an_idle_connection_the_upstream_dropped_costs_no_attempt(tmp_path: Path) -> None:
    ca = smarthost_ca(tmp_path)
    async with await smarthost(ca) as fake:
        transport = pooled(fake, ca.ca_file)
        await transport.send(ALICE, [BOB], CONTENT)
        await fake.hang_up()
        result = await transport.send(ALICE, [CAROL], CONTENT)
        assert result.replies[CAROL] == (250, "2.0.0 stored as M2")
        assert fake.connections == 2
        assert [m.rcpt_tos for m in fake.delivered()] == [[BOB], [CAROL]]
        await transport.close()


async def test_a_connection_that_fails_mid_message_is_never_reused(tmp_path: Path) -> None:
    """The line dies after the dot (TLS-6): that message is deferred with the evidence,
    the connection is dropped, and the next message goes over a new one."""
    ca = smarthost_ca(tmp_path)
    cert = ca.issue(SMARTHOST)
    async with await smarthost(ca, cert=cert) as fake:
        transport = pooled(fake, ca.ca_file)
        first = await transport.send(ALICE, [BOB], CONTENT)
        fake.script.drop_after_dot = 1
        dropped = await transport.send(ALICE, [BOB], CONTENT)
        assert transport.pool.idle == 0
        after = await transport.send(ALICE, [CAROL], CONTENT)
        await transport.close()
    assert first.replies[BOB][0] == 250
    assert dropped.replies[BOB][0] == 451
    assert dropped.final_reply.startswith("451 4.4.2 upstream 127.0.0.1:")
    assert dropped.evidence.cert_sha256 == fingerprint(cert)
    assert after.replies[CAROL][0] == 250
    assert fake.connections == 2
    # The dropped connection carried two messages; the new one starts afresh (no RSET).
    assert fake.verbs(tls=True).count("RSET") == 1


async def test_a_message_refused_by_the_upstream_leaves_the_connection_usable(
    tmp_path: Path,
) -> None:
    ca = smarthost_ca(tmp_path)
    script = Script(rcpt_replies={BOB: "550 5.1.1 no such user"})
    async with await smarthost(ca, script) as fake:
        transport = pooled(fake, ca.ca_file)
        refused = await transport.send(ALICE, [BOB], CONTENT)  # MAIL open, no DATA
        sent = await transport.send(ALICE, [CAROL], CONTENT)
        await transport.close()
    assert refused.replies[BOB] == (550, "5.1.1 no such user")
    assert sent.replies[CAROL][0] == 250
    assert fake.connections == 1
    assert session_verbs(fake)[-6:] == ["RCPT", "RSET", "MAIL", "RCPT", "DATA", "QUIT"]


# -- through the gateway, into the register ---------------------------------------------


async def relay_with_register(
    start_gateway: StartGateway, fake: FakeSmarthost, ca_file: Path, **upstream: Any
) -> RunningGateway:
    cfg = {
        "delivery": {"transport": "smtp", "concurrency": 1},
        "upstream": {
            "host": "127.0.0.1",
            "port": fake.port,
            "tls_name": SMARTHOST,
            "ca_file": str(ca_file),
            "timeout": 5.0,
            **upstream,
        },
    }
    gw = await start_gateway(config=cfg)
    gw.add_staff(ALICE)
    return gw


def delivered_evidence(gw: RunningGateway) -> list[dict[str, str]]:
    register = gw.gateway.register
    assert register is not None
    return [
        f.data["evidence"]
        for r in register.records()
        for f in r.followups
        if f.kind == "outcome" and f.data.get("status") == "delivered"
    ]


async def test_gateway_delivers_a_burst_over_one_connection_with_evidence_per_message(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = smarthost_ca(tmp_path)
    cert = ca.issue(SMARTHOST)
    async with await smarthost(ca, cert=cert) as fake:
        gw = await relay_with_register(start_gateway, fake, ca.ca_file)
        for _ in range(4):
            await submit(gw, [BOB])
        await fake.wait_for(4)
        await until(lambda: len(delivered_evidence(gw)) == 4)
        assert fake.connections == 1
        assert fake.verbs().count("MAIL") == 4
        evidence = delivered_evidence(gw)
        assert "QUIT" not in fake.verbs()
        await gw.gateway.stop()  # QUITs the kept connection
        await until(lambda: fake.verbs()[-1:] == ["QUIT"])
    assert {e["cert_sha256"] for e in evidence} == {fingerprint(cert)}
    assert all(e["tls_version"].startswith("TLSv1.") and e["cipher"] for e in evidence)
    assert {e["host"] for e in evidence} == {f"127.0.0.1:{fake.port}"}


async def test_gateway_retries_a_message_whose_connection_died_on_a_new_one(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(drop_after_dot=1)) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: len(log.of(qid)) == 2)
        assert log.statuses(qid) == [(1, "deferred"), (2, "delivered")]
        assert log.of(qid)[0].evidence.cert_sha256 == log.of(qid)[1].evidence.cert_sha256 != ""
        assert fake.connections == 2
        assert [m.answered[:3] for m in fake.messages] == ["", "250"]


def test_pool_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    for key, value, reason in (
        ("pool_idle_seconds", "-1", "must be zero (off) or more"),
        ("pool_max_messages", "0", "must be greater than zero"),
    ):
        path.write_text(f'[upstream]\nhost = "smtp.example.org"\n{key} = {value}\n')
        with pytest.raises(ConfigError) as err:
            load(path)
        assert str(err.value) == f"{path}: upstream.{key}: {reason}"
    path.write_text('[upstream]\nhost = "smtp.example.org"\npool_idle_seconds = 0\n')
    assert load(path).upstream.pool_idle_seconds == 0
