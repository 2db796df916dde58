"""``c4f-gateway keys`` on a real database, each command a real subprocess: the register
and contacts across a register-key rotation, the chain across a MAC rotation, retire
refused while rows need a key and accepted after a re-seal, and a re-wrapped entry key
that no re-seal recorded still reported by ``register verify``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

import pytest
from support.pki import TestCA
from support.subprocess_gateway import prepare, run_cli

from gateway.crypto import Keyring, key_id_of
from gateway.register.codec import MacKey

pytestmark = pytest.mark.slow


def keys(config: Path, *args: str) -> tuple[int, str, str]:
    by = () if args[0] in ("list", "--help") else ("--by", "admin")
    done = run_cli("keys", *args, "--config", config, *by)
    return done.returncode, done.stdout, done.stderr


def listing(config: Path) -> dict[str, tuple[str, str, str]]:
    """`keys list` as {id: (key, state, needed by)}."""
    code, out, err = keys(config, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "ID", "STATE", "NEEDED", "BY"]
    rows = {}
    for line in lines[1:]:
        which, kid, state, needs = line.split(maxsplit=3)
        rows[kid] = (which, state, needs)
    return rows


def settle(path: Path) -> None:
    """Date the key file back past ``keys retire``'s settling time (60 s)."""
    then = time.time() - 120
    os.utime(path, (then, then))


def add_contact(config: Path, address: str) -> None:
    done = run_cli(
        "contacts", "add", address, "--name", "Sam Smith", "--org", "School",
        "--approved-by", "Jo Manager", "--verified", "phoned back", "--no-dns",
        "--by", "admin", "--config", config,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def verify(config: Path) -> tuple[int, str]:
    assert run_cli("register", "checkpoint", "--config", config).returncode == 0
    done = run_cli("register", "verify", "--config", config)
    return done.returncode, done.stdout + done.stderr


def db(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "gateway.db")


@pytest.fixture
def config(tmp_path: Path, ca: TestCA) -> Path:
    path = prepare(tmp_path / "gw", ca)
    add_contact(path, "sam@school.example")
    return path


def test_register_key_rotation_reseal_and_retire(config: Path) -> None:
    register_key = config.parent / "keys" / "register.key"
    old = Keyring.load(register_key).current_id
    code, out, err = keys(config, "rotate", "register")
    assert code == 0, err
    new = Keyring.load(register_key).current_id
    assert new != old and f"register key rotated: {new}" in out
    assert Keyring.load(register_key).ids == [new, old]

    # Rows sealed before the rotation still open and are still found by their lookup hash.
    add_contact(config, "kim@school.example")
    shown = run_cli("contacts", "show", "sam@school.example", "--config", config)
    assert shown.returncode == 0 and "Sam Smith" in shown.stdout
    rows = listing(config)
    assert rows[new][:2] == ("register", "current")
    assert rows[old][:2] == ("register", "old")
    assert "contacts.sealed 1" in rows[old][2] and "register entries 1" in rows[old][2]

    code, _out, err = keys(config, "retire", old)
    assert code == 2
    assert "register.key changed " in err and f"so that nothing sealed under {old}" in err
    settle(register_key)
    code, _out, err = keys(config, "retire", old)
    assert code == 2
    assert f"{old} is still needed by contacts.sealed 1" in err
    assert "keys reseal register" in err
    assert Keyring.load(register_key).ids == [new, old]  # nothing removed

    code, out, err = keys(config, "reseal", "register")
    assert code == 0, err
    assert f"register: 3 re-sealed under {new}" in out
    with db(config) as conn:
        ids = {key_id_of(b) for (b,) in conn.execute("SELECT entry_key FROM register")}
        ids |= {key_id_of(b) for (b,) in conn.execute("SELECT sealed FROM contacts")}
    assert ids == {new}
    assert listing(config)[old][2] == "nothing"

    code, report = verify(config)
    assert code == 0, report
    assert "Register verified" in report

    code, out, err = keys(config, "retire", old)
    assert code == 0, err
    assert Keyring.load(register_key).ids == [new]
    assert old not in listing(config)
    # After the old key is gone: every contact found by lookup, every entry readable.
    for address in ("sam@school.example", "kim@school.example"):
        shown = run_cli("contacts", "show", address, "--config", config)
        assert shown.returncode == 0 and address in shown.stdout, shown.stderr
    entry = run_cli("register", "show", "1", "--config", config)
    assert entry.returncode == 0 and "contact add" in entry.stdout
    assert "sam@school.example" in entry.stdout
    code, report = verify(config)
    assert code == 0, report
    admin = run_cli("register", "list", "--admin", "--config", config).stdout
    for action in ("key rotated", "reseal", "keys resealed", "key retired"):
        assert action in admin

    # A second rotation re-wraps the same entries again: the newest record counts.
    assert keys(config, "rotate", "register")[0] == 0
    code, out, err = keys(config, "reseal", "register")
    assert code == 0, err
    assert "register entries" in out
    code, report = verify(config)
    assert code == 0, report
    entry = run_cli("register", "show", "1", "--config", config)
    assert entry.returncode == 0 and "sam@school.example" in entry.stdout


def test_rewrapped_entry_key_that_no_reseal_recorded_is_reported(config: Path) -> None:
    register_key = config.parent / "keys" / "register.key"
    keys(config, "rotate", "register")
    ring = Keyring.load(register_key)
    with db(config) as conn:
        (wrapped,) = conn.execute("SELECT entry_key FROM register WHERE seq = 1").fetchone()
        aad = b"c4f-register-key:1"
        forged = ring.seal(ring.open(wrapped, aad), aad)  # a valid wrap, but unrecorded
        conn.execute("UPDATE register SET entry_key = ? WHERE seq = 1", (forged,))
    code, report = verify(config)
    assert code == 1
    assert "entry 1: its encrypted data was altered" in report

    # A re-seal records entries it re-wraps; the one altered by hand stays reported.
    assert keys(config, "reseal", "register")[0] == 0
    code, report = verify(config)
    assert code == 1
    assert "entry 1: its encrypted data was altered" in report
    assert "entry 2" not in report


def test_mac_rotation_keeps_the_whole_chain_verifiable(config: Path) -> None:
    mac_file = config.parent / "keys" / "register-mac.key"
    before = MacKey.load(mac_file)
    code, out, err = keys(config, "rotate", "mac")
    assert code == 0, err
    assert "epoch 1 (mac-e1) signs from now on" in out
    after = MacKey.load(mac_file)
    assert after.epoch == 1 and after.key != before.key
    assert after.earlier == ((0, before.key),)
    # Not derived from the old key: a leaked old key cannot sign what comes next.
    assert after.key != before.evolved().key

    add_contact(config, "kim@school.example")
    with db(config) as conn:
        epochs = [e for (e,) in conn.execute("SELECT epoch FROM register ORDER BY seq")]
    assert epochs == [0, 1, 1]  # contact, "key rotated", contact
    code, report = verify(config)
    assert code == 0, report
    assert "3 entries" in report

    rows = listing(config)
    assert rows["mac-e1"][:2] == ("mac", "current")
    assert rows["mac-e0"][1] == "old"
    assert "register entries 1" in rows["mac-e0"][2] and "epochs 0-0" in rows["mac-e0"][2]
    code, _out, err = keys(config, "retire", "mac-e0")
    assert code == 2 and "mac-e0 is still needed by register entries 1" in err
    assert MacKey.load(mac_file).earlier == ((0, before.key),)
    code, _out, err = keys(config, "retire", "mac-e1")
    assert code == 2 and "is the current mac key" in err

    # An entry of the old epoch altered after the rotation is still caught.
    with db(config) as conn:
        conn.execute("UPDATE register SET at_us = at_us + 1 WHERE seq = 1")
    code, report = verify(config)
    assert code == 1 and "entry 1 was altered" in report


def test_spool_key_retire_refused_for_unknown_and_current_keys(config: Path) -> None:
    spool_key = config.parent / "keys" / "spool.key"
    current = Keyring.load(spool_key).current_id
    code, _out, err = keys(config, "retire", current)
    assert code == 2 and f"{current} is the current spool key: rotate first" in err
    code, _out, err = keys(config, "retire", "nosuchkey")
    assert code == 2 and "no key nosuchkey in any key file" in err
    code, _out, err = keys(config, "reseal", "spool", "--batch", "0")
    assert code == 2 and "--batch: must be at least 1" in err
    code, out, _err = keys(config, "--help")
    assert code == 0 and "rotate" in out and "retire" in out


def test_a_row_no_key_opens_is_listed_as_missing_and_reseal_exits_1(config: Path) -> None:
    foreign = Keyring([("deadbeef", bytes(range(32)))])
    with db(config) as conn:
        conn.execute("UPDATE contacts SET sealed = ?", (foreign.seal(b"{}", b"c4f-contact:1"),))
    rows = listing(config)
    assert rows["deadbeef"] == ("register", "missing", "contacts.sealed 1")
    assert keys(config, "rotate", "register")[0] == 0
    code, out, _err = keys(config, "reseal", "register")
    assert code == 1
    assert "1 did not open (altered or damaged): they keep the old key needed" in out
    assert re.search(r"^contacts\.sealed\s+0\s+1$", out, re.MULTILINE)
    assert listing(config)["deadbeef"][1] == "missing"
