"""The register's canonical encoding, its MAC key and the per-entry encryption.

Canonical encoding: every field is a 4-byte big-endian length followed by its bytes
(integers as 8-byte big-endian signed, text as UTF-8), so ("ab", "c") and ("a", "bc")
encode differently (REG-5). An entry's MAC is HMAC-SHA-256 over the encoding of its
plain fields, the digest of its encrypted part and the previous entry's MAC, so any
edit, deletion, insertion or reordering breaks the chain (Schneier & Kelsey 1999).

The MAC key file holds a line ``EPOCH HEX``. When keys evolve, the next key is
``HMAC(key, "c4f-register-evolve")`` and the old one is overwritten: whoever steals the
current key cannot forge entries of earlier epochs (forward integrity, Bellare & Yee
1997), while a verifier holding an earlier key can derive every later one.

Rotating the MAC key (``c4f-gateway keys rotate mac``) is different from evolving it: the
next epoch starts with a fresh random key that no earlier key derives, so a key that
leaked cannot sign anything written after the rotation. The file then holds one line per
key, newest first; each line's key covers its epoch and the epochs derived from it up to
the next line's. Evolving writes only the current line again (the earlier keys leave the
machine, as forward integrity wants); without evolution the earlier lines stay, so
``register verify`` checks the whole chain from the file alone.

Personal fields are sealed per entry: a fresh AES-256-GCM data key encrypts them and is
itself sealed by the register master key (:class:`gateway.crypto.Keyring`). Destroying
the wrapped data key and the ciphertext purges the entry (crypto-shredding); the digest
of both stays in the chain so it still verifies (as Amazon QLDB's redaction keeps its
data hash).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto import Keyring, read_secret_file, write_secret_file
from gateway.errors import ConfigError, SpoolCorrupt

DOMAIN = b"c4f-register-entry/1"
GENESIS = bytes(32)  # the "previous MAC" of entry 1
_EVOLVE = b"c4f-register-evolve"
_NONCE = 12


class KeyUnavailable(Exception):
    """The key for an earlier epoch cannot be derived from the key held (by design)."""


class EntryPurged(Exception):
    """The entry's data key and ciphertext were destroyed by a purge."""


def encode(*fields: bytes | str | int) -> bytes:
    """Length-prefixed concatenation; the only input to MACs and signatures."""
    out = bytearray()
    for f in fields:
        if isinstance(f, bool):
            raise TypeError("booleans are not encoded; use 0 or 1")
        if isinstance(f, int):
            b = f.to_bytes(8, "big", signed=True)
        elif isinstance(f, str):
            b = f.encode("utf-8")
        else:
            b = bytes(f)
        out += len(b).to_bytes(4, "big") + b
    return bytes(out)


@dataclass(frozen=True)
class EntryFields:
    """The plain part of an entry: everything the MAC covers."""

    seq: int
    epoch: int
    at_us: int  # microseconds since the epoch, so the encoding has no float in it
    kind: str
    ref: int  # the original entry's seq for a follow-up, 0 for an original
    queue_id: str
    size: int
    sha256: str  # of the message bytes relayed ("" when there are none)
    public: str  # canonical JSON of non-personal details (a purge's list of entries)
    data_sha256: bytes  # of encode(sealed, wrapped key): kept after a purge

    def mac_input(self, prev_mac: bytes) -> bytes:
        return encode(
            DOMAIN,
            self.seq,
            self.epoch,
            self.at_us,
            self.kind,
            self.ref,
            self.queue_id,
            self.size,
            self.sha256,
            self.public,
            self.data_sha256,
            prev_mac,
        )


def entry_mac(key: bytes, fields: EntryFields, prev_mac: bytes) -> bytes:
    return hmac.new(key, fields.mac_input(prev_mac), hashlib.sha256).digest()


def data_digest(sealed: bytes, wrapped: bytes) -> bytes:
    return hashlib.sha256(encode(sealed, wrapped)).digest()


# -- the MAC key --------------------------------------------------------------------------


@dataclass(frozen=True)
class MacKey:
    epoch: int
    key: bytes
    # Keys kept from before a rotation, newest first: (the first epoch it covers, key).
    earlier: tuple[tuple[int, bytes], ...] = ()

    def for_epoch(self, epoch: int) -> bytes:
        """The key of ``epoch``, derived forward from the newest line at or before it;
        an epoch no line held covers raises KeyUnavailable."""
        start, key = self.epoch, self.key
        if epoch < self.epoch:
            found = [(s, k) for s, k in self.earlier if s <= epoch]
            if not found:
                raise KeyUnavailable(f"epoch {epoch} is not derivable from epoch {self.epoch}")
            start, key = found[0]
        for _ in range(epoch - start):
            key = _next(key)
        return key

    def evolved(self) -> MacKey:
        """The next epoch's key, derived; the earlier keys are dropped (forward integrity)."""
        return MacKey(self.epoch + 1, _next(self.key))

    def rotated(self) -> MacKey:
        """The next epoch with a fresh random key; this one is kept for earlier epochs."""
        return MacKey(
            self.epoch + 1, secrets.token_bytes(32), ((self.epoch, self.key), *self.earlier)
        )

    def lines(self) -> list[tuple[int, bytes]]:
        """(first epoch, key) of every key held, the current one first."""
        return [(self.epoch, self.key), *self.earlier]

    @classmethod
    def load(cls, path: Path) -> MacKey:
        text = read_secret_file(path, "register MAC key file")
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        found: list[tuple[int, bytes]] = []
        for line in lines:
            try:
                epoch_text, hexkey = line.split()
                key = bytes.fromhex(hexkey)
                epoch = int(epoch_text)
            except ValueError as exc:
                raise ConfigError(f"{path}: expected lines 'EPOCH HEX'") from exc
            if len(key) != 32 or epoch < 0:
                raise ConfigError(f"{path}: expected lines 'EPOCH HEX' with a 32-byte key")
            found.append((epoch, key))
        if not found:
            raise ConfigError(f"{path}: expected one line 'EPOCH HEX'")
        if [e for e, _ in found] != sorted({e for e, _ in found}, reverse=True):
            raise ConfigError(f"{path}: key lines must be newest epoch first, each epoch once")
        return cls(found[0][0], found[0][1], tuple(found[1:]))

    @staticmethod
    def create(path: Path) -> None:
        """A new epoch-0 key file (mode 0600); refuses to overwrite."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"0 {secrets.token_hex(32)}\n")
            f.flush()
            os.fsync(f.fileno())

    def save(self, path: Path) -> None:
        """Replace the key file atomically: keys no longer held are gone from it."""
        write_secret_file(path, "".join(f"{e} {k.hex()}\n" for e, k in self.lines()))


def _next(key: bytes) -> bytes:
    return hmac.new(key, _EVOLVE, hashlib.sha256).digest()


# -- per-entry encryption -----------------------------------------------------------------


def _aad(seq: int) -> bytes:
    return b"c4f-register-data:" + str(seq).encode()


def _key_aad(seq: int) -> bytes:
    return b"c4f-register-key:" + str(seq).encode()


def seal_entry(master: Keyring, seq: int, plaintext: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, wrapped data key), both bound to ``seq`` so they cannot be moved."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(_NONCE)
    sealed = nonce + AESGCM(data_key).encrypt(nonce, plaintext, _aad(seq))
    return sealed, master.seal(data_key, _key_aad(seq))


def rewrap_entry_key(master: Keyring, seq: int, wrapped: bytes) -> bytes | None:
    """The entry's data key wrapped again under the current master key (None when it
    already is); the data itself is not touched."""
    return master.reseal(wrapped, _key_aad(seq))


def open_entry(master: Keyring, seq: int, sealed: bytes | None, wrapped: bytes | None) -> bytes:
    if sealed is None or wrapped is None:
        raise EntryPurged(f"entry {seq} was purged")
    data_key = master.open(wrapped, _key_aad(seq))
    try:
        return AESGCM(data_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(seq))
    except (InvalidTag, ValueError) as exc:
        raise SpoolCorrupt(f"entry {seq}: encrypted data fails its check") from exc
