"""Staff password hashes: OWASP's minimum cost, raised at the next login (issue 12).

OWASP's Password Storage Cheat Sheet: scrypt N = 2**17, r = 8, p = 1 at least. Hashes made
before (N = 2**15) still verify and are replaced at the account's next successful login,
by SMTP AUTH or by console sign-in. Test accounts are hashed at 2**10 and their gateways
run at cost 10 (``support.harness.base_config``), so the suite stays fast; these tests
raise the cost on purpose, and one runs the production default through a real ``serve``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import StartGateway
from support.harness import PASSWORD
from support.pki import TestCA
from support.subprocess_gateway import GatewayProcess, connect, prepare, run_cli
from support.web import PASSWORD as CONSOLE_PASSWORD
from support.web import make_site, sign_in

from gateway.directory import passwords
from gateway.directory.passwords import check_password, hash_password
from gateway.directory.staff import StaffDirectory
from gateway.settings import Settings
from gateway.store import Store

ALICE = "alice@c4f.example"


def stored_hash(db: Path, login: str) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        [(value,)] = conn.execute("SELECT password_hash FROM staff WHERE login = ?", (login,))
    finally:
        conn.close()
    return str(value)


def cost_of(encoded: str) -> tuple[str, str, str, str]:
    scheme, n, r, p = encoded.split("$")[:4]
    return scheme, n, r, p


def test_the_default_is_owasps_minimum() -> None:
    assert Settings().auth.password_hash_cost == 17
    assert cost_of(hash_password("x")) == ("scrypt", str(2**17), "8", "1")


def test_check_config_warns_about_a_cost_below_the_minimum(tmp_path: Path, ca: TestCA) -> None:
    config = prepare(tmp_path / "gw", ca)  # the tests' cost: 10
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    warning = (
        f"WARNING: {config}: auth.password_hash_cost: 10 is below OWASP's minimum for "
        "scrypt (17); for test accounts only"
    )
    assert warning in checked.stderr.splitlines()
    config.write_text(
        config.read_text().replace("password_hash_cost = 10", "password_hash_cost = 17")
    )
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0 and "password_hash_cost" not in checked.stderr


async def test_smtp_login_raises_an_old_hash_and_the_password_still_works(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(config={"auth": {"password_hash_cost": 11}})
    gw.add_staff(ALICE)  # hashed at 2**10, as before the cost was raised
    db = gw.settings.storage.database
    old = stored_hash(db, ALICE)
    assert cost_of(old)[1] == "1024"

    client = await gw.client(ALICE)  # logs in; raises on anything but 235
    client.close()
    new = stored_hash(db, ALICE)
    assert cost_of(new) == ("scrypt", "2048", "8", "1")
    assert check_password(PASSWORD, new) and not check_password("wrong", new)

    client = await gw.client(ALICE)  # the same password, against the new hash
    client.close()
    assert stored_hash(db, ALICE) == new  # done once: already at the cost


async def test_a_wrong_password_changes_nothing(start_gateway: StartGateway) -> None:
    gw = await start_gateway(config={"auth": {"password_hash_cost": 11}})
    gw.add_staff(ALICE)
    db = gw.settings.storage.database
    old = stored_hash(db, ALICE)
    assert gw.gateway.staff.authenticate(ALICE, "not the password") is None
    assert stored_hash(db, ALICE) == old


def test_console_sign_in_raises_an_old_hash(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca, config={"auth": {"password_hash_cost": 11}})
    manager = "max.manager@c4f.example"
    db = site.settings.storage.database
    assert cost_of(stored_hash(db, manager))[1] == "1024"
    with site.client() as client:
        reply = sign_in(client, manager, CONSOLE_PASSWORD)
        assert reply.status_code == 303 and reply.headers["location"] == "/register"
    assert cost_of(stored_hash(db, manager)) == ("scrypt", "2048", "8", "1")
    with site.client() as client:
        assert sign_in(client, manager, CONSOLE_PASSWORD).headers["location"] == "/register"


def test_a_password_changed_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    try:
        staff = StaffDirectory(store, cost=11)
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO staff (login, password_hash, created) VALUES (?, ?, 0)",
                (ALICE, hash_password("old", n=2**10)),
            )
        checked = store.query("SELECT password_hash FROM staff")[0][0]
        staff.set_password(ALICE, "changed by an admin")
        staff._upgrade(ALICE, checked, "old")  # the login that checked the old hash
        assert staff.authenticate(ALICE, "changed by an admin") is not None
        assert staff.authenticate(ALICE, "old") is None
    finally:
        store.close()


def test_a_stored_hash_cannot_ask_for_unbounded_memory() -> None:
    salt, digest = "AAAAAAAAAAAAAAAAAAAAAA==", "AAAA"
    started = time.perf_counter()
    assert not check_password("x", f"scrypt${2**30}$8$1${salt}${digest}")
    assert not check_password("x", f"scrypt${2**17}$64$1${salt}${digest}")
    assert not check_password("x", f"scrypt$1000$8$1${salt}${digest}")  # not a power of 2
    assert time.perf_counter() - started < 0.5  # refused, not computed


def test_a_burst_of_checks_waits_for_a_free_slot() -> None:
    """At most CONCURRENT_HASHES scrypt runs at once (128 MiB each at the default cost)."""
    slots = passwords._SLOTS
    encoded = hash_password(PASSWORD, n=2**10)
    for _ in range(passwords.CONCURRENT_HASHES):
        assert slots.acquire(timeout=5)  # every slot busy, as in a burst of logins
    done: list[bool] = []
    waiting = threading.Thread(target=lambda: done.append(check_password(PASSWORD, encoded)))
    try:
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and done == []  # it waits rather than run beside them
    finally:
        for _ in range(passwords.CONCURRENT_HASHES):
            slots.release()
    waiting.join(5)
    assert done == [True]


@pytest.mark.slow
async def test_serve_at_the_default_cost_upgrades_a_2015_cost_hash(
    tmp_path: Path, ca: TestCA
) -> None:
    """The production path end to end: `serve` at the default cost (no test override),
    an account hashed at the previous default (2**15), two SMTP logins."""
    config = prepare(tmp_path / "gw", ca, config={"auth": {"password_hash_cost": 17}})
    db = tmp_path / "gw" / "gateway.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE staff SET password_hash = ? WHERE login = ?",
            (hash_password(PASSWORD, n=2**15), ALICE),
        )
    conn.close()
    text = config.read_text()
    assert "password_hash_cost = 17" in text
    config.write_text(text.replace("password_hash_cost = 17\n", ""))  # the default

    gw = await GatewayProcess(config).start()
    try:
        for _ in range(2):
            client = await connect(gw.port, ca)  # AUTH; raises on anything but 235
            await client.quit()
            assert cost_of(stored_hash(db, ALICE)) == ("scrypt", str(2**17), "8", "1")
    finally:
        assert await gw.stop() == 0
    assert "password_hash_upgraded" in gw.output()
    assert PASSWORD not in gw.output()
