"""Outbound TLS to the smarthost (reliability-tests.md §7, TLS-1..5 and TLS-7; INJ-7).

Every case runs the real gateway against a scripted smarthost (``support.fakesmtp``)
and reads two things: the Outcome events the engine recorded, and the smarthost's own
transcript, which shows that nothing but EHLO and STARTTLS (and QUIT) went in clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import aiosmtplib
import pytest
from conftest import StartGateway
from support.delivery import (
    ALICE,
    BOB,
    SMARTHOST,
    EventLog,
    relay_gateway,
    smarthost,
    smarthost_ca,
    submit,
    until,
)
from support.fakesmtp import FakeSmarthost, Script
from support.harness import message
from support.pki import NOW, Issued, TestCA

from gateway.queue.smtp_transport import MIN_AIOSMTPLIB, version_at_least
from gateway.tls import write_dev_certificate

IN_CLEAR_ALLOWED = {"EHLO", "STARTTLS", "QUIT"}
MESSAGE_VERBS = {"MAIL", "RCPT", "DATA", "AUTH", "BDAT"}


def assert_nothing_sent(fake: FakeSmarthost) -> None:
    assert set(fake.verbs()) <= IN_CLEAR_ALLOWED, fake.transcript
    assert not MESSAGE_VERBS & set(fake.verbs())
    assert fake.messages == []


async def test_tls1_no_starttls_offered_defers_and_sends_only_ehlo(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """TLS-1 / INJ-7a: no STARTTLS offered -> deferred 4.7.4, only EHLO (and QUIT) seen."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(starttls=False)) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        [outcome] = log.of(qid)[:1]
        assert outcome.status == "deferred"
        assert outcome.recipients == (BOB,)
        assert outcome.reply.startswith("451 4.7.4 TLS is required, but was not offered by host")
        assert fake.verbs() in (["EHLO"], ["EHLO", "QUIT"])
        assert fake.messages == []
        [row] = gw.gateway.spool.rows()
        assert (row.queue_id, row.state, row.pending) == (qid, "queued", 1)
        assert "4.7.4" in row.last_error


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("454 4.7.0 TLS not available due to local problem", "451 4.7.4 TLS is required, but"),
        ("502 5.5.1 Command not implemented", "451 4.7.4 TLS is required, but"),
        (None, "451 4.7.5 Cannot start TLS"),  # the line drops at STARTTLS
    ],
    ids=["454", "502", "dropped"],
)
async def test_tls2_starttls_refused_or_dropped_defers_and_retries(
    start_gateway: StartGateway, tmp_path: Path, reply: str | None, expected: str
) -> None:
    """TLS-2 / INJ-7b,c,f: STARTTLS answered 454 or 502, or dropped -> deferred, retried."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(starttls_reply=reply)) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: len(log.of(qid)) >= 2)
        assert log.statuses(qid)[:2] == [(1, "deferred"), (2, "deferred")]
        assert all(o.reply.startswith(expected) for o in log.of(qid)), log.of(qid)
        assert fake.connections >= 2
        assert fake.verbs().count("STARTTLS") >= 2
        assert_nothing_sent(fake)


async def test_inj7d_ehlo_refused_defers_without_helo_fallback(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """INJ-7d: EHLO refused -> deferred; no HELO fallback (HELO cannot offer STARTTLS)."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(ehlo_reply="554 5.7.1 not today")) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        outcome = log.of(qid)[0]
        assert outcome.status == "deferred"
        assert outcome.reply.startswith("451 4.4.2 upstream 127.0.0.1: EHLO failed: 554")
        assert set(fake.verbs()) == {"EHLO"}
        assert fake.messages == []


def self_signed(ca: TestCA, folder: Path) -> tuple[Issued, str]:
    cert, key = folder / "self-signed.crt", folder / "self-signed.key"
    write_dev_certificate(cert, key, [SMARTHOST])
    return Issued(cert, key), SMARTHOST


def intermediate(ca: TestCA, folder: Path, *, chain: bool) -> tuple[Issued, str]:
    sub = TestCA(folder / "intermediate", "smarthost intermediate CA", parent=ca)
    return sub.issue(SMARTHOST, with_chain=chain), SMARTHOST


# Each builder: (the smarthost's CA, a folder) -> (certificate, the name we verify).
BAD_CERTIFICATES: dict[str, Callable[[TestCA, Path], tuple[Issued, str]]] = {
    "self-signed": self_signed,
    "wrong-san": lambda ca, _: (ca.issue(SMARTHOST, sans=["other.test"]), SMARTHOST),
    "expired": lambda ca, _: (
        ca.issue(
            SMARTHOST, not_before=NOW - dt.timedelta(days=20), not_after=NOW - dt.timedelta(days=1)
        ),
        SMARTHOST,
    ),
    "not-yet-valid": lambda ca, _: (
        ca.issue(
            SMARTHOST, not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9)
        ),
        SMARTHOST,
    ),
    "untrusted-ca": lambda _, folder: (
        TestCA(folder / "rogue", "rogue CA").issue(SMARTHOST),
        SMARTHOST,
    ),
    "missing-intermediate": lambda ca, folder: intermediate(ca, folder, chain=False),
    "cn-only": lambda ca, _: (ca.issue(SMARTHOST, sans=[]), SMARTHOST),
    "wildcard-two-labels": lambda ca, _: (ca.issue("*.smarthost.test"), "a.mx.smarthost.test"),
    # No tls_name: the name is upstream.host (127.0.0.1), which this certificate lacks.
    "name-from-host": lambda ca, _: (ca.issue(SMARTHOST), ""),
}

# The same shapes done right are delivered: the cases above fail for their flaw alone.
GOOD_CERTIFICATES: dict[str, Callable[[TestCA, Path], tuple[Issued, str]]] = {
    "leaf": lambda ca, _: (ca.issue(SMARTHOST), SMARTHOST),
    "with-intermediate": lambda ca, folder: intermediate(ca, folder, chain=True),
    "wildcard-one-label": lambda ca, _: (ca.issue("*.smarthost.test"), "mx.smarthost.test"),
    "ip-san-from-host": lambda ca, _: (ca.issue(SMARTHOST, sans=["127.0.0.1"]), ""),
}


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
@pytest.mark.parametrize("case", list(BAD_CERTIFICATES))
async def test_tls3_unverifiable_certificate_defers_before_any_message_byte(
    start_gateway: StartGateway, tmp_path: Path, case: str, implicit: bool
) -> None:
    """TLS-3: each bad certificate -> deferred as "not verified"; no AUTH, MAIL or DATA."""
    ca = smarthost_ca(tmp_path)
    cert, name = BAD_CERTIFICATES[case](ca, tmp_path)
    log = EventLog()
    script = Script(implicit=implicit, auth=("relay-user", "relay-password"))
    async with await smarthost(ca, script, cert=cert) as fake:
        credentials = tmp_path / "upstream.credentials"
        credentials.write_text("relay-user\nrelay-password\n")
        credentials.chmod(0o600)
        gw = await relay_gateway(
            start_gateway,
            fake,
            ca,
            log,
            upstream={"tls_name": name, "credentials_file": str(credentials)},
        )
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        outcome = log.of(qid)[0]
        assert outcome.status == "deferred"
        assert outcome.reply.startswith("451 4.7.5 Server certificate not verified"), outcome
        assert_nothing_sent(fake)
        assert fake.verbs(tls=True) == []  # not one command inside a session we distrust


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
@pytest.mark.parametrize("case", list(GOOD_CERTIFICATES))
async def test_tls3_controls_verified_certificates_are_delivered(
    start_gateway: StartGateway, tmp_path: Path, case: str, implicit: bool
) -> None:
    ca = smarthost_ca(tmp_path)
    cert, name = GOOD_CERTIFICATES[case](ca, tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(implicit=implicit), cert=cert) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log, upstream={"tls_name": name})
        qid = await submit(gw, [BOB])
        [arrived] = await fake.wait_for(1)
        assert arrived.tls and arrived.rcpt_tos == [BOB]
        await until(lambda: log.of(qid))
        assert log.statuses(qid) == [(1, "delivered")]


def legacy_client() -> ssl.SSLContext:
    """A client that still speaks TLS 1.0/1.1: proves the fake smarthost really does."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
async def test_tls4_upstream_with_only_tls_1_1_is_refused(
    start_gateway: StartGateway, tmp_path: Path, implicit: bool
) -> None:
    """TLS-4: a smarthost that speaks only TLS 1.0/1.1 -> deferred, nothing sent."""
    ca = smarthost_ca(tmp_path)
    issued = ca.issue(SMARTHOST)
    old = FakeSmarthost.context(issued.cert, issued.key, max_tls11=True)
    log = EventLog()
    async with FakeSmarthost(old, Script(implicit=implicit)) as fake:
        if implicit:
            try:
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", fake.port, ssl=legacy_client()
                )
            except (ssl.SSLError, ConnectionError):
                pytest.skip("this OpenSSL cannot speak TLS 1.1 at all, so TLS-4 cannot be staged")
            assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
            writer.close()
            await until(lambda: not fake._sessions)
            fake.transcript.clear()
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        await until(lambda: log.of(qid))
        outcome = log.of(qid)[0]
        assert outcome.status == "deferred"
        assert outcome.reply.startswith("451 4.7.5 Cannot start TLS"), outcome
        assert_nothing_sent(fake)


async def test_tls5_forged_reply_after_220_ready_is_ignored(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """TLS-5 / INJ-7e: ``220 Ready`` plus a forged ``250`` in one segment: the forged
    bytes are discarded (aiosmtplib >= 5.1.2), so every later reply pairs with its command.
    If they were kept, DATA would read RCPT's 250 and nothing would arrive."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    script = Script(after_ready=b"250 2.0.0 forged\r\n")
    async with await smarthost(ca, script) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log)
        qid = await submit(gw, [BOB])
        [arrived] = await fake.wait_for(1)
        await until(lambda: log.of(qid))
        [outcome] = log.of(qid)
        assert outcome.status == "delivered"
        assert outcome.reply == "250 2.0.0 stored as M1"
        assert arrived.tls and arrived.rcpt_tos == [BOB]
        assert fake.verbs(tls=False) == ["EHLO", "STARTTLS"]
        assert fake.verbs(tls=True)[:4] == ["EHLO", "MAIL", "RCPT", "DATA"]


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("5.1.2", True),
        ("5.1.3", True),
        ("5.2.0rc1", True),
        ("5.1.2.post1", True),
        ("6", True),
        ("10.0.0", True),
        ("5.1.1", False),
        ("5.1", False),
        ("5.1.2rc1", False),
        ("5.1.2.dev3", False),
        ("4.99.99", False),
        ("", False),
        ("unknown", False),
    ],
)
def test_tls5_aiosmtplib_version_parse(version: str, ok: bool) -> None:
    assert version_at_least(version, MIN_AIOSMTPLIB) is ok


def test_tls5_startup_refuses_aiosmtplib_older_than_5_1_2() -> None:
    """The check runs when the transport module loads (the server imports it)."""
    code = "import aiosmtplib\naiosmtplib.__version__ = '5.1.1'\nimport gateway.server\n"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode != 0
    assert "ImportError: aiosmtplib >= 5.1.2 is required" in run.stderr


async def test_tls7_requiretls_is_refused_with_555(start_gateway: StartGateway) -> None:
    """TLS-7: MAIL FROM:<...> REQUIRETLS -> 555 (TLS is enforced anyway, not per message)."""
    gw = await start_gateway()
    gw.add_staff(ALICE)
    client = await gw.client(ALICE)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(ALICE, options=["REQUIRETLS"])
        # aiosmtpd answers this itself (the parameter is not offered, RFC 5321 4.1.1.11),
        # before smtp_handler sees it; either way, the answer is 555 and nothing is queued.
        assert refused.value.code == 555
        assert refused.value.message.startswith("5.5.4 ")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as no_mail:
            await client.rcpt(BOB)
        assert no_mail.value.code == 503
    finally:
        client.close()


async def test_tls7_tls_required_no_header_is_stripped_and_tls_still_enforced(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """TLS-7: ``TLS-Required: No`` (RFC 8689 5) does not relax anything, and never leaves."""
    ca = smarthost_ca(tmp_path)
    msg = message(ALICE, [BOB], TLS_Required="No")
    assert "TLS-Required: No" in msg.as_string()
    log = EventLog()
    async with await smarthost(ca, Script(starttls=False)) as plain:
        gw = await relay_gateway(start_gateway, plain, ca, log)
        qid = await submit(gw, [BOB], msg)
        await until(lambda: log.of(qid))
        assert log.of(qid)[0].status == "deferred"
        assert log.of(qid)[0].reply.startswith("451 4.7.4")
        assert_nothing_sent(plain)
    [accepted] = log.accepts
    assert b"tls-required" not in accepted.content.lower()  # stripped before it was spooled
    async with await smarthost(ca) as good:
        gw2 = await relay_gateway(start_gateway, good, ca, EventLog())
        await submit(gw2, [BOB], msg)
        [arrived] = await good.wait_for(1)
        assert arrived.tls
        assert b"tls-required" not in arrived.content.lower()
        assert b"\r\nSubject: Visit notes\r\n" in arrived.content
