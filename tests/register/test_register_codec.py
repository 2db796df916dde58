"""The register's canonical encoding, MAC and key files (REG-1, REG-5, REG-9 key part)."""

from __future__ import annotations

import hashlib
import hmac
import struct
from pathlib import Path

import pytest

from gateway.crypto import Keyring
from gateway.errors import ConfigError, SpoolCorrupt
from gateway.register.codec import (
    GENESIS,
    EntryFields,
    EntryPurged,
    KeyUnavailable,
    MacKey,
    encode,
    entry_mac,
    open_entry,
    seal_entry,
)

KEY = bytes(range(32))
FIELDS = EntryFields(
    seq=1,
    epoch=0,
    at_us=1_700_000_000_000_000,
    kind="accepted",
    ref=0,
    queue_id="A1B2C3D4E5F6",
    size=1234,
    sha256="ab" * 32,
    public="{}",
    data_sha256=bytes(range(32)),
)
# Golden vectors: a change to the encoding or the MAC breaks every existing register.
GOLDEN_MAC = "2636132d704c2035d0e8a069a5f084acb3c4a830b1f6071578185ad9242dbe00"
GOLDEN_EVOLVED = "652791d066e4fff8ac18a84da7982a17c492474f516dda50a165b8a7b9b26897"


def _lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _i(n: int) -> bytes:
    return _lp(struct.pack(">q", n))


def test_reg1_encoding_matches_the_written_spec() -> None:
    """REG-1: the encoding, rebuilt by hand from the module docstring, byte for byte."""
    expected = b"".join(
        [
            _lp(b"c4f-register-entry/1"),
            _i(1),
            _i(0),
            _i(1_700_000_000_000_000),
            _lp(b"accepted"),
            _i(0),
            _lp(b"A1B2C3D4E5F6"),
            _i(1234),
            _lp(b"ab" * 32),
            _lp(b"{}"),
            _lp(bytes(range(32))),
            _lp(GENESIS),
        ]
    )
    assert FIELDS.mac_input(GENESIS) == expected


def test_reg1_golden_mac_vector() -> None:
    """REG-1: HMAC-SHA-256 over the encoding, pinned."""
    mac = entry_mac(KEY, FIELDS, GENESIS)
    assert mac.hex() == GOLDEN_MAC
    assert mac == hmac.new(KEY, FIELDS.mac_input(GENESIS), hashlib.sha256).digest()


def test_reg1_golden_key_evolution_vector() -> None:
    assert MacKey(0, KEY).evolved().key.hex() == GOLDEN_EVOLVED
    assert MacKey(0, KEY).for_epoch(1).hex() == GOLDEN_EVOLVED


def test_reg5_length_prefix_keeps_field_boundaries() -> None:
    """REG-5: ("ab", "c") and ("a", "bc") encode differently."""
    assert encode("ab", "c") != encode("a", "bc")
    assert encode("ab", "c") == b"\x00\x00\x00\x02ab\x00\x00\x00\x01c"
    assert encode("", "abc") != encode("abc", "")
    moved = EntryFields(**{**FIELDS.__dict__, "kind": "accepte", "queue_id": "dA1B2C3D4E5F6"})
    assert entry_mac(KEY, moved, GENESIS) != entry_mac(KEY, FIELDS, GENESIS)


def test_encode_refuses_booleans() -> None:
    with pytest.raises(TypeError):
        encode(True)


def test_reg9_current_key_cannot_derive_earlier_keys(tmp_path: Path) -> None:
    """REG-9: keys evolve one way; the current key does not give an earlier one."""
    path = tmp_path / "mac.key"
    MacKey.create(path)
    first = MacKey.load(path)
    later = first.evolved().evolved()
    later.save(path)
    assert MacKey.load(path) == later
    assert first.key.hex() not in path.read_text()
    assert later.for_epoch(2) == later.key
    assert first.for_epoch(2) == later.key  # an earlier key derives later ones
    with pytest.raises(KeyUnavailable):
        later.for_epoch(0)


def test_mac_key_file_checks(tmp_path: Path) -> None:
    path = tmp_path / "mac.key"
    MacKey.create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        MacKey.create(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by group or others"):
        MacKey.load(path)
    path.chmod(0o600)
    path.write_text("0 abcd\n")
    with pytest.raises(ConfigError, match="32-byte"):
        MacKey.load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        MacKey.load(tmp_path / "missing.key")


def test_entry_sealing_is_bound_to_its_number(tmp_path: Path) -> None:
    Keyring.create(tmp_path / "k")
    ring = Keyring.load(tmp_path / "k")
    sealed, wrapped = seal_entry(ring, 7, b'{"subject":"x"}')
    assert open_entry(ring, 7, sealed, wrapped) == b'{"subject":"x"}'
    with pytest.raises(SpoolCorrupt):
        open_entry(ring, 8, sealed, wrapped)  # copied into another row: does not open
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SpoolCorrupt):
        open_entry(ring, 7, flipped, wrapped)
    with pytest.raises(EntryPurged):
        open_entry(ring, 7, None, None)
