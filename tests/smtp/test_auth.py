"""Relay control and AUTH abuse (reliability-tests.md §3): REL-1, AUTH-1..4."""

from __future__ import annotations

import asyncio
import base64
import logging
import statistics
import time

import pytest
from conftest import StartGateway
from support.harness import PASSWORD
from support.rawsmtp import RawSMTP, authenticated

from gateway.directory.passwords import hash_password
from gateway.directory.staff import StaffDirectory

ALICE = "alice@c4f.example"


async def _tls_session(gw: object, port: int, tls: object) -> RawSMTP:
    c = await RawSMTP.connect(port)
    await c.reply()
    await c.cmd("EHLO client.test")
    await c.cmd("STARTTLS")
    await c.starttls(tls)  # type: ignore[arg-type]
    await c.cmd("EHLO client.test")
    return c


def _plain(authzid: str, login: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{login}\0{password}".encode()).decode()


async def test_rel_1_no_relay_without_auth(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _tls_session(gw, gw.port, gw.client_tls())
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("530 5.7.0")
    assert (await c.cmd("RCPT TO:<bob@c4f.example>")).startswith("530 5.7.0")
    assert (await c.cmd("DATA")).startswith("530 5.7.0")
    await c.close()
    assert gw.gateway.spool.rows() == []


async def test_auth_1_wrong_passwords_then_421_and_close(start_gateway: StartGateway) -> None:
    gw = await start_gateway(config={"auth": {"max_failures_per_session": 3}})
    gw.add_staff(ALICE)
    c = await _tls_session(gw, gw.port, gw.client_tls())
    for _ in range(2):
        assert await c.cmd(f"AUTH PLAIN {_plain('', ALICE, 'wrong')}") == (
            "535 5.7.8 Authentication credentials invalid"
        )
    assert (await c.cmd(f"AUTH PLAIN {_plain('', ALICE, 'wrong')}")).startswith("421 4.7.0")
    assert await c.closed()


async def test_auth_1_client_address_is_throttled_even_with_right_password(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={"auth": {"max_failures_per_client": 4, "max_failures_per_session": 10}}
    )
    gw.add_staff(ALICE)
    gw.add_staff("bob@c4f.example")
    c = await _tls_session(gw, gw.port, gw.client_tls())
    for _ in range(4):
        assert (await c.cmd(f"AUTH PLAIN {_plain('', 'bob@c4f.example', 'x')}")).startswith("535")
    assert (await c.cmd(f"AUTH PLAIN {_plain('', ALICE, PASSWORD)}")).startswith("454 4.7.0")
    await c.close()
    # Another client address is not affected (127.0.0.2 is loopback too).
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.port, local_addr=("127.0.0.2", 0)
    )
    other = RawSMTP(reader, writer)
    await other.reply()
    await other.cmd("EHLO client.test")
    await other.cmd("STARTTLS")
    await other.starttls(gw.client_tls())
    await other.cmd("EHLO client.test")
    assert (await other.login(ALICE, PASSWORD)).startswith("235")
    await other.close()


async def test_auth_1_account_cool_down_holds_even_for_right_password(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={
            "auth": {
                "max_failures_per_client": 100,
                "max_failures_per_account": 3,
                "max_failures_per_session": 10,
            }
        }
    )
    gw.add_staff(ALICE)
    c = await _tls_session(gw, gw.port, gw.client_tls())
    for _ in range(3):
        assert (await c.cmd(f"AUTH PLAIN {_plain('', ALICE, 'wrong')}")).startswith("535")
    assert (await c.cmd(f"AUTH PLAIN {_plain('', ALICE, PASSWORD)}")).startswith("454 4.7.0")
    await c.close()


async def test_auth_2_unknown_user_and_wrong_password_look_the_same(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _tls_session(gw, gw.port, gw.client_tls())
    unknown = await c.cmd(f"AUTH PLAIN {_plain('', 'nobody@c4f.example', 'x')}")
    wrong = await c.cmd(f"AUTH PLAIN {_plain('', ALICE, 'x')}")
    assert unknown == wrong == "535 5.7.8 Authentication credentials invalid"
    await c.close()


def test_auth_2_unknown_user_costs_a_full_password_check(tmp_path: object) -> None:
    """Timing: the unknown-user path runs scrypt against a dummy hash of the same cost.

    A loose ratio of medians, not a speed target: it fails only if one path skips scrypt.
    """
    from pathlib import Path

    from gateway.store import Store

    store = Store(Path(str(tmp_path)) / "t.db")
    staff = StaffDirectory(store, cost=14)  # any cost: the dummy hash follows the directory's
    staff.add(ALICE, "a-real-password-1")

    def median(login: str) -> float:
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert staff.authenticate(login, "wrong-password") is None
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    known, unknown = median(ALICE), median("nobody@c4f.example")
    assert 0.25 < unknown / known < 4, (known, unknown)


async def test_auth_3_authzid_must_match_login(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    gw.add_staff("manager@c4f.example")
    c = await _tls_session(gw, gw.port, gw.client_tls())
    reply = await c.cmd(f"AUTH PLAIN {_plain('manager@c4f.example', ALICE, PASSWORD)}")
    assert reply.startswith("535 5.7.8")
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("530")
    # The same identity as authzid is fine (RFC 4616 allows it).
    assert (await c.cmd(f"AUTH PLAIN {_plain(ALICE, ALICE, PASSWORD)}")).startswith("235")
    await c.close()


async def test_auth_3_bad_base64_and_second_auth(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _tls_session(gw, gw.port, gw.client_tls())
    assert (await c.cmd("AUTH PLAIN !!!notbase64")).startswith("501 5.5.2")
    assert (await c.login(ALICE, PASSWORD)).startswith("235")
    assert (await c.login(ALICE, PASSWORD)).startswith("503 5.5.1")
    await c.close()


async def test_auth_login_mechanism_works(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _tls_session(gw, gw.port, gw.client_tls())
    assert (await c.cmd("AUTH LOGIN")).startswith("334")
    assert (await c.cmd(base64.b64encode(ALICE.encode()).decode())).startswith("334")
    assert (await c.cmd(base64.b64encode(PASSWORD.encode()).decode())).startswith("235")
    await c.close()


async def test_auth_4_password_never_logged_or_stored(
    start_gateway: StartGateway, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every stdlib logger, aiosmtpd's 'mail.log' included
    logging.getLogger("mail.log").setLevel(logging.DEBUG)
    try:
        gw = await start_gateway()
        gw.add_staff(ALICE)
        secret = "Wrong-But-Secret-Passw0rd"
        c = await _tls_session(gw, gw.port, gw.client_tls())
        await c.cmd(f"AUTH PLAIN {_plain('', ALICE, secret)}")
        await c.cmd("AUTH LOGIN")
        await c.cmd(base64.b64encode(ALICE.encode()).decode())
        await c.cmd(base64.b64encode(secret.encode()).decode())
        await c.close()
        ok = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
        await ok.close()
    finally:
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    assert "auth_failed" in logs  # the failures were logged...
    for needle in (
        secret,
        PASSWORD,
        _plain("", ALICE, secret),
        base64.b64encode(secret.encode()).decode(),
        _plain("", ALICE, PASSWORD),
    ):
        assert needle not in logs  # ...without the password in any form
    db = gw.settings.storage.database.read_bytes()
    assert PASSWORD.encode() not in db and secret.encode() not in db


def test_password_hash_round_trip() -> None:
    h = hash_password("correct horse battery staple", n=2**10)
    from gateway.directory.passwords import check_password

    assert check_password("correct horse battery staple", h)
    assert not check_password("correct horse battery stapl", h)
    assert h.startswith("scrypt$1024$")
