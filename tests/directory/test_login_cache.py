"""Logins verified once (issue 16): a verified login skips the hash check for [auth] cache_ttl.

The hash check is counted through the directory's ``verify`` (the real scrypt check,
wrapped); changes come through the real directory and the real ``staff`` command.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import StartGateway
from support.harness import PASSWORD, staff_commands_config, write_config
from support.pki import TestCA
from support.rawsmtp import RawSMTP
from support.subprocess_gateway import run_cli
from support.web import MANAGER, STAFF, csrf_of, make_site, sign_in

from gateway.cli import main
from gateway.directory.passwords import check_password
from gateway.directory.staff import StaffDirectory
from gateway.settings import ConfigError, load
from gateway.settings.web import WebSettings
from gateway.store import Store

ALICE = "alice@c4f.example"
FIRST = "first secret pass phrase 41"
SECOND = "second secret pass phrase 42"


class Counted:
    """The real hash check, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, password: str, stored: str) -> bool:
        self.calls += 1
        return check_password(password, stored)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(
    tmp_path: Path, *, ttl: float = 300.0, clock: Clock | None = None
) -> tuple[StaffDirectory, Counted]:
    store = Store(tmp_path / "gateway.db")
    hashes = Counted()
    staff = StaffDirectory(store, cost=10, cache_ttl=ttl, verify=hashes, clock=clock or Clock())
    if staff.get(ALICE) is None:
        staff.add(ALICE, FIRST)
    return staff, hashes


def test_second_login_within_ttl_skips_the_hash(tmp_path: Path) -> None:
    staff, hashes = directory(tmp_path)
    first = staff.authenticate(ALICE, FIRST)
    assert first is not None and hashes.calls == 1
    again = staff.authenticate("Alice@C4F.example", FIRST)
    assert again == first and hashes.calls == 1


def test_recently_verified_answers_only_from_a_verified_login(tmp_path: Path) -> None:
    # What the listener asks on the event loop before it hands a login to a thread.
    staff, hashes = directory(tmp_path)
    assert staff.recently_verified(ALICE, FIRST) is None  # never verified yet
    assert staff.recently_verified("nobody@c4f.example", FIRST) is None
    first = staff.authenticate(ALICE, FIRST)
    assert first is not None
    assert staff.recently_verified("Alice@C4F.example", FIRST) == first
    assert staff.recently_verified(ALICE, SECOND) is None
    assert staff.set_password(ALICE, SECOND)
    assert staff.recently_verified(ALICE, FIRST) is None
    assert hashes.calls == 1  # it never checks a hash itself


def test_wrong_password_after_a_verified_login_is_checked_and_refused(tmp_path: Path) -> None:
    staff, hashes = directory(tmp_path)
    assert staff.authenticate(ALICE, FIRST) is not None
    assert staff.authenticate(ALICE, "not the password") is None
    assert hashes.calls == 2
    # A failure forgets the verified login: the right password is checked again.
    assert staff.authenticate(ALICE, FIRST) is not None
    assert hashes.calls == 3


def test_failures_are_never_remembered(tmp_path: Path) -> None:
    staff, hashes = directory(tmp_path)
    for _ in range(2):
        assert staff.authenticate(ALICE, "not the password") is None
        assert staff.authenticate("nobody@c4f.example", FIRST) is None
    assert hashes.calls == 4


def test_the_entry_expires_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    staff, hashes = directory(tmp_path, ttl=60.0, clock=clock)
    assert staff.authenticate(ALICE, FIRST) is not None
    clock.now += 59.0
    assert staff.authenticate(ALICE, FIRST) is not None
    assert hashes.calls == 1
    clock.now += 1.0
    assert staff.authenticate(ALICE, FIRST) is not None
    assert hashes.calls == 2


def test_cache_ttl_zero_checks_every_login(tmp_path: Path) -> None:
    staff, hashes = directory(tmp_path, ttl=0.0)
    for _ in range(3):
        assert staff.authenticate(ALICE, FIRST) is not None
    assert hashes.calls == 3


def test_changes_through_the_directory_forget_the_account(tmp_path: Path) -> None:
    staff, hashes = directory(tmp_path)
    assert staff.authenticate(ALICE, FIRST) is not None
    assert staff.set_role(ALICE, "manager")
    member = staff.authenticate(ALICE, FIRST)
    assert member is not None and member.role == "manager" and hashes.calls == 2
    assert staff.set_password(ALICE, SECOND)
    assert staff.authenticate(ALICE, FIRST) is None
    assert staff.authenticate(ALICE, SECOND) is not None and hashes.calls == 4
    assert staff.remove(ALICE)
    assert staff.authenticate(ALICE, SECOND) is None


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return staff_commands_config(tmp_path)


def cli(config: Path, *args: str, stdin: str | None = None) -> None:
    done = run_cli("staff", *args, "--config", config, stdin=stdin)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "change",
    [
        ("passwd", ALICE, "--password-stdin"),
        ("role", ALICE, "manager"),
        ("remove", ALICE),
    ],
    ids=["passwd", "role", "remove"],
)
def test_a_change_by_the_staff_command_in_another_process_misses(
    config: Path, change: tuple[str, ...]
) -> None:
    cli(config, "add", ALICE, "--password-stdin", stdin=FIRST + "\n")
    store = Store(load(config).storage.database)
    hashes = Counted()
    staff = StaffDirectory(store, cost=10, cache_ttl=300.0, verify=hashes)
    assert staff.authenticate(ALICE, FIRST) is not None
    assert staff.authenticate(ALICE, FIRST) is not None and hashes.calls == 1
    cli(config, *change, stdin=SECOND + "\n")
    member = staff.authenticate(ALICE, FIRST)
    assert hashes.calls == 2  # checked again, not taken from memory
    if change[0] == "role":
        assert member is not None and member.role == "manager"
    else:
        assert member is None
    store.close()


def test_cache_ttl_below_zero_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path / "gateway.toml", {"auth": {"cache_ttl": -1}})
    with pytest.raises(ConfigError, match=r"gateway\.toml: auth\.cache_ttl: must be zero"):
        load(path)


def _plain(login: str, password: str) -> str:
    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


async def _session(port: int, tls: object) -> RawSMTP:
    c = await RawSMTP.connect(port)
    await c.reply()
    await c.cmd("EHLO client.test")
    await c.cmd("STARTTLS")
    await c.starttls(tls)  # type: ignore[arg-type]
    await c.cmd("EHLO client.test")
    return c


async def test_smtp_wrong_password_after_a_verified_login_is_refused_and_throttled(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(config={"auth": {"max_failures_per_client": 1}})
    assert gw.settings.auth.cache_ttl == 300.0  # the default: on
    gw.add_staff(ALICE)
    hashes = gw.gateway.staff.verify = Counted()
    for _ in range(2):
        ok = await _session(gw.port, gw.client_tls())
        assert (await ok.cmd(f"AUTH PLAIN {_plain(ALICE, PASSWORD)}")).startswith("235")
        await ok.close()
    assert hashes.calls == 1  # the second login was verified from memory
    second = await _session(gw.port, gw.client_tls())
    assert (await second.cmd(f"AUTH PLAIN {_plain(ALICE, 'wrong')}")) == (
        "535 5.7.8 Authentication credentials invalid"
    )
    await second.close()
    assert hashes.calls == 2  # the wrong password was checked
    # The failure counted: this client may not try again, even with the right password.
    third = await _session(gw.port, gw.client_tls())
    assert (await third.cmd(f"AUTH PLAIN {_plain(ALICE, PASSWORD)}")).startswith("454 4.7.0")
    await third.close()


def test_console_sign_in_is_verified_once_and_a_wrong_code_forgets_it(
    tmp_path: Path, ca: TestCA, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path / "gw", ca, web=WebSettings())  # TOTP for managers
    hashes = site.console.staff.verify = Counted()
    config = str(site.settings.source)
    assert main(["web", "totp-enrol", MANAGER, "--config", config, "--by", "it-admin"]) == 0
    capsys.readouterr()
    with site.client() as client:
        for _ in range(2):
            assert sign_in(client, STAFF).status_code == 303
            client.cookies.clear()
        assert hashes.calls == 1
        assert sign_in(client, MANAGER).headers["location"] == "/signin/code"
        page = client.get("/signin/code")
        wrong = client.post("/signin/code", data={"csrf": csrf_of(page.text), "code": "000000"})
        assert wrong.status_code == 401 and hashes.calls == 2
        client.cookies.clear()
        assert sign_in(client, MANAGER).headers["location"] == "/signin/code"
        assert hashes.calls == 3  # the password was checked again after the failure
