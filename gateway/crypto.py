"""Key files and AES-256-GCM sealing.

A key file holds one key per line, ``KEY_ID HEX``; the first line is the current key
(used to seal), the others are kept to open what older keys sealed, so keys can rotate.
The file is created with mode 0600 and never logged.

Sealed format: ``b"C4F1" | len(key_id) | key_id | nonce(12) | ciphertext+tag``. The
caller's associated data (for example the queue ID) binds a blob to its place, so a
blob copied into another row does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ConfigError, SpoolCorrupt

MAGIC = b"C4F1"
_NONCE = 12


def read_secret_file(path: Path, what: str, encoding: str = "ascii") -> str:
    """The text of a key or credentials file, which must be private to its owner (0600)."""
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: {what} must not be readable by group or others")
        return path.read_text(encoding=encoding)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("key file holds no key")
        self.current_id = keys[0][0]
        self._keys = dict(keys)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        text = read_secret_file(path, "key file")
        keys: list[tuple[str, bytes]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                key_id, hexkey = line.split()
                key = bytes.fromhex(hexkey)
            except ValueError as exc:
                raise ConfigError(f"{path}:{lineno}: expected 'KEY_ID HEX'") from exc
            if len(key) != 32 or not 0 < len(key_id.encode()) < 256:
                raise ConfigError(f"{path}:{lineno}: a key is 32 bytes with a short id")
            keys.append((key_id, key))
        return cls(keys)

    @staticmethod
    def create(path: Path) -> None:
        """Write a new key file with one fresh key; refuses to overwrite."""
        path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{secrets.token_hex(4)} {AESGCM.generate_key(bit_length=256).hex()}\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def rotate(path: Path) -> str:
        """Put a new current key in front of the existing ones; returns its id."""
        old = path.read_text(encoding="ascii")
        key_id = secrets.token_hex(4)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{key_id} {AESGCM.generate_key(bit_length=256).hex()}\n{old}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return key_id

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        kid = self.current_id.encode()
        nonce = os.urandom(_NONCE)
        ct = AESGCM(self._keys[self.current_id]).encrypt(nonce, plaintext, MAGIC + kid + aad)
        return MAGIC + bytes([len(kid)]) + kid + nonce + ct

    def lookups(self, value: str, purpose: bytes) -> list[bytes]:
        """Keyed hashes (HMAC-SHA-256) of ``value``, one per key held, the current key's
        first: a sealed column is found by equality on its hash, which tells nothing without
        the key. Store the first; search with all, so rows from before a rotation still match.
        ``purpose`` keeps the hashes of different columns apart."""
        return [
            hmac.new(
                hmac.new(key, b"c4f-lookup/1:" + purpose, hashlib.sha256).digest(),
                value.encode("utf-8"),
                hashlib.sha256,
            ).digest()
            for key in self._keys.values()
        ]

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < len(MAGIC) + 1 or not blob.startswith(MAGIC):
            raise SpoolCorrupt("not a sealed blob (bad magic or truncated)")
        n = blob[len(MAGIC)]
        start = len(MAGIC) + 1
        kid = blob[start : start + n]
        nonce = blob[start + n : start + n + _NONCE]
        ct = blob[start + n + _NONCE :]
        key = self._keys.get(kid.decode("ascii", "replace"))
        if key is None:
            raise SpoolCorrupt(f"sealed with unknown key id {kid!r}")
        if len(nonce) != _NONCE or len(ct) < 16:
            raise SpoolCorrupt("sealed blob is truncated")
        try:
            return AESGCM(key).decrypt(nonce, ct, MAGIC + kid + aad)
        except InvalidTag as exc:
            raise SpoolCorrupt("integrity check failed (altered, truncated or wrong key)") from exc
