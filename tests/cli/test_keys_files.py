"""The key files behind ``c4f-gateway keys``: a keyring follows its file when another
process rotates or retires a key, keeps its keys when the file is broken, and two key
changes at once fail instead of losing a key; the MAC key file's lines, one per rotation.
"""

from __future__ import annotations

import importlib
import os
import secrets
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.crypto import Keyring, key_id_of
from gateway.errors import ConfigError, SpoolCorrupt
from gateway.register.codec import KeyUnavailable, MacKey


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "spool.key"
    Keyring.create(path)
    return path


def test_a_loaded_keyring_follows_rotation_and_retirement(key_file: Path) -> None:
    ring = Keyring.load(key_file)
    old = ring.current_id
    before = ring.seal(b"queued before", b"Q1")
    hashes_before = ring.lookups("alice@c4f.example", b"holds.staff")

    new = Keyring.rotate(key_file)
    assert ring.current_id == new and ring.ids == [new, old]
    after = ring.seal(b"queued after", b"Q2")
    assert key_id_of(after) == new and key_id_of(before) == old
    assert ring.open(before, b"Q1") == b"queued before"
    # A value stored under the old key's hash is still found: search with every key.
    assert hashes_before[0] in ring.lookups("alice@c4f.example", b"holds.staff")

    resealed = ring.reseal(before, b"Q1")
    assert resealed is not None and key_id_of(resealed) == new
    assert ring.reseal(resealed, b"Q1") is None  # already under the current key
    with pytest.raises(SpoolCorrupt):
        ring.reseal(before, b"Q2")  # bound to its place: the associated data must match

    with pytest.raises(ConfigError, match="is the current key"):
        Keyring.retire(key_file, new)
    Keyring.retire(key_file, old)
    assert ring.ids == [new]
    assert ring.open(resealed, b"Q1") == b"queued before"
    with pytest.raises(SpoolCorrupt, match="unknown key id"):
        ring.open(before, b"Q1")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_broken_key_file_is_logged_and_the_keys_held_are_kept(key_file: Path) -> None:
    ring = Keyring.load(key_file)
    current = ring.current_id
    blob = ring.seal(b"x", b"aad")
    tmp = key_file.with_name("half-written")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key line\n")
    os.close(fd)
    os.replace(tmp, key_file)
    with capture_logs() as logs:
        assert ring.current_id == current
        assert ring.open(blob, b"aad") == b"x"
    assert [e["event"] for e in logs] == ["key_file_reload_failed"]  # once, not per use
    assert "not a key line" not in str(logs)
    with pytest.raises(ConfigError, match="expected 'KEY_ID HEX'"):
        Keyring.load(key_file)


def test_two_key_changes_at_once_fail_instead_of_losing_a_key(key_file: Path) -> None:
    text = key_file.read_text()
    busy = key_file.with_name(f".{key_file.name}.tmp")
    busy.write_text("")
    with pytest.raises(ConfigError, match="another key change is running"):
        Keyring.rotate(key_file)
    assert key_file.read_text() == text
    busy.unlink()
    Keyring.rotate(key_file)
    assert len(Keyring.load(key_file).ids) == 2 and not busy.exists()


def test_mac_key_lines_cover_their_epochs(tmp_path: Path) -> None:
    k0, k3, k5 = (secrets.token_bytes(32) for _ in range(3))
    path = tmp_path / "mac.key"
    MacKey(5, k5, ((3, k3), (0, k0))).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    mac = MacKey.load(path)
    assert mac.lines() == [(5, k5), (3, k3), (0, k0)]
    assert mac.for_epoch(0) == k0
    assert mac.for_epoch(2) == MacKey(0, k0).for_epoch(2)  # evolved from line 0
    assert mac.for_epoch(3) == k3
    assert mac.for_epoch(4) == MacKey(3, k3).for_epoch(4)
    assert mac.for_epoch(6) == MacKey(5, k5).for_epoch(6)
    # Evolving drops the older lines (forward integrity); a rotation keeps them.
    assert mac.evolved().lines() == [(6, MacKey(5, k5).for_epoch(6))]
    with pytest.raises(KeyUnavailable):
        mac.evolved().for_epoch(5)
    rotated = mac.rotated()
    assert rotated.epoch == 6 and rotated.key != mac.evolved().key
    assert rotated.lines()[1:] == mac.lines()

    path.write_text(f"0 {k0.hex()}\n3 {k3.hex()}\n")
    with pytest.raises(ConfigError, match="newest epoch first"):
        MacKey.load(path)
    path.write_text(f"3 {k0.hex()}\n3 {k3.hex()}\n")
    with pytest.raises(ConfigError, match="each epoch once"):
        MacKey.load(path)


# Every module that seals with a keyring or stores a keyed hash, and where `keys reseal`
# renews what it wrote (a module missing from here would keep a key needed for ever, or
# lose its rows when the key is retired).
RESEALED_BY = {
    "gateway/queue/sealed.py": "keys_tables.SPOOL (queue.blob, queue.staff, queue.last_error)",
    "gateway/queue/release.py": "keys_tables.SPOOL (queue_release.proof)",
    "gateway/holds/table.py": "table.SEALED in keys_tables.SPOOL (holds.staff, holds.reasons)",
    "gateway/web/sessions.py": "sessions.SEALED in keys_tables.SPOOL (web_sessions.state)",
    # (an enrolment link's keyed hash is made from its token, which is not kept: it cannot
    # be renewed, and `keys retire` waits for the link instead, totp.link_key_ids)
    "gateway/web/totp.py": "totp.SEALED in keys_tables.SPOOL (web_totp.secret, "
    "web_totp_links.secret)",
    "gateway/directory/contacts_sealed.py": "contacts.SEALED in keys_tables.REGISTER",
    "gateway/register/index.py": "keys_tables.REGISTER (register_term.sealed with lookup)",
    "gateway/register/codec.py": "register.rekey (entry keys)",
    "gateway/register/threads.py": "register.rekey (register_thread.lookup)",
}


def test_every_sealing_module_is_known_to_keys_reseal() -> None:
    root = Path(__file__).resolve().parents[2]
    sealing = {
        str(path.relative_to(root))
        for path in (root / "gateway").rglob("*.py")
        if any(call in path.read_text() for call in (".seal(", ".lookups("))
    }
    sealing -= {"gateway/crypto.py", "gateway/cli/keys_tables.py"}
    assert sealing == set(RESEALED_BY), (
        "a module seals or hashes with a keyring: declare its columns as SEALED beside "
        "its table and collect them in gateway/cli/keys_tables.py (or re-seal them in "
        "gateway/register/rekey.py), then list it here"
    )


def test_every_declared_sealed_column_is_collected_by_keys() -> None:
    from gateway.cli import keys_tables

    root = Path(__file__).resolve().parents[2]
    declared = []
    for path in sorted((root / "gateway").rglob("*.py")):
        if "\nSEALED = [" in path.read_text():
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            declared += importlib.import_module(name).SEALED
    collected = keys_tables.SPOOL + keys_tables.REGISTER
    names = {c.name for c in declared}
    assert {"holds.staff", "holds.reasons", "contacts.sealed", "web_totp.secret"} <= names
    assert "web_totp_links.secret" in names
    assert all(c in collected for c in declared)
    assert len({c.name for c in collected}) == len(collected)  # no column twice
