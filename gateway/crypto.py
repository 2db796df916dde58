"""Key files and AES-256-GCM sealing.

A key file holds one key per line, ``KEY_ID HEX``; the first line is the current key
(used to seal), the others are kept to open what older keys sealed, so keys can rotate
(``c4f-gateway keys rotate``, then ``keys reseal``, then ``keys retire``). The file is
created with mode 0600 and never logged.

A keyring loaded from a file notices when the file is replaced (its inode, size or time
changes) and reads it again before its next use, so a running ``serve`` or ``web`` seals
with a key another process rotated in, and opens what that process re-sealed, without a
restart. A file that no longer parses is logged and the keys already held are kept.

Sealed format: ``b"C4F1" | len(key_id) | key_id | nonce(12) | ciphertext+tag``. The
caller's associated data (for example the queue ID) binds a blob to its place, so a
blob copied into another row does not open.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ConfigError, SpoolCorrupt

MAGIC = b"C4F1"
_NONCE = 12

log = structlog.get_logger("gateway.crypto")


def read_secret_file(path: Path, what: str, encoding: str = "ascii") -> str:
    """The text of a key or credentials file, which must be private to its owner (0600)."""
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: {what} must not be readable by group or others")
        return path.read_text(encoding=encoding)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc


def write_secret_file(path: Path, text: str) -> None:
    """Replace a key file atomically (temp file, fsync, rename, fsync the folder), mode
    0600 and the owner of the file it replaces, so a key changed by root stays readable
    by the gateway's own user. The temp file is created exclusively: a second key change
    running at the same time fails instead of losing the first one's key."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{tmp}: exists: another key change is running (or one was cut off: remove it)"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                    with contextlib.suppress(PermissionError):
                        os.fchown(f.fileno(), st.st_uid, st.st_gid)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def key_id_of(blob: bytes | None) -> str | None:
    """The id of the key that sealed ``blob`` (None when it is not a sealed blob)."""
    if blob is None or len(blob) < len(MAGIC) + 1 or bytes(blob[:4]) != MAGIC:
        return None
    n = blob[len(MAGIC)]
    return bytes(blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n]).decode("ascii", "replace")


@dataclass(frozen=True)
class SealedColumn:
    """A column whose values a module seals: the table, the column, the associated data
    each row's value is bound to and, if the row is found by a keyed hash, that hash's
    column and how to compute it from the opened value. Each module that seals declares
    its columns as ``SEALED``; ``c4f-gateway keys`` counts and re-seals them."""

    table: str
    column: str
    aad: Callable[[sqlite3.Row], bytes]
    # (the lookup column, its value computed from the opened plaintext and the row)
    lookup: tuple[str, Callable[[Keyring, bytes, sqlite3.Row], bytes]] | None = None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def _parse(path: Path) -> list[tuple[str, bytes]]:
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
        if any(k == key_id for k, _ in keys):
            raise ConfigError(f"{path}:{lineno}: key id {key_id} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise ConfigError(f"{path}: key file holds no key")
    return keys


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]], path: Path | None = None) -> None:
        if not keys:
            raise ConfigError("key file holds no key")
        # (current id, every key): replaced whole on reload, so a reader never sees half.
        self._state: tuple[str, dict[str, bytes]] = (keys[0][0], dict(keys))
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> Keyring:
        stamp = _stamp(path) if path.exists() else None
        ring = cls(_parse(path), path)
        ring._stamp = stamp
        return ring

    def refresh(self) -> None:
        """Read the key file again if it was replaced since it was last read."""
        if self.path is None:
            return
        try:
            stamp = _stamp(self.path)
        except OSError:
            return  # a moment between unlink and rename, or gone: keep what we hold
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                keys = _parse(self.path)
            except ConfigError as exc:
                log.error("key_file_reload_failed", file=str(self.path), error=str(exc))
                return
            self._state = (keys[0][0], dict(keys))
        log.info("key_file_reloaded", file=str(self.path), current=keys[0][0], keys=len(keys))

    @property
    def current_id(self) -> str:
        self.refresh()
        return self._state[0]

    @property
    def ids(self) -> list[str]:
        """Every key id held, the current one first."""
        self.refresh()
        return list(self._state[1])

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
        held = _parse(path)
        key_id = secrets.token_hex(4)
        while any(k == key_id for k, _ in held):
            key_id = secrets.token_hex(4)
        lines = [(key_id, AESGCM.generate_key(bit_length=256)), *held]
        write_secret_file(path, "".join(f"{k} {v.hex()}\n" for k, v in lines))
        return key_id

    @staticmethod
    def retire(path: Path, key_id: str) -> None:
        """Remove an old key from the file (the caller checked that nothing needs it)."""
        held = _parse(path)
        if held[0][0] == key_id:
            raise ConfigError(f"{path}: {key_id} is the current key; rotate first")
        if not any(k == key_id for k, _ in held):
            raise ConfigError(f"{path}: holds no key {key_id}")
        write_secret_file(path, "".join(f"{k} {v.hex()}\n" for k, v in held if k != key_id))

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        self.refresh()
        current, keys = self._state
        kid = current.encode()
        nonce = os.urandom(_NONCE)
        ct = AESGCM(keys[current]).encrypt(nonce, plaintext, MAGIC + kid + aad)
        return MAGIC + bytes([len(kid)]) + kid + nonce + ct

    def seal_pieces(self, pieces: Sequence[bytes | bytearray], aad: bytes) -> bytearray:
        """:meth:`seal` of the pieces joined, without joining them: each is encrypted in
        turn into the buffer returned (AES-GCM as a stream gives the same bytes), so a
        large message is not copied before it is sealed."""
        self.refresh()
        current, keys = self._state
        kid = current.encode()
        nonce = os.urandom(_NONCE)
        prefix = MAGIC + bytes([len(kid)]) + kid + nonce
        size = sum(len(p) for p in pieces)
        out = bytearray(len(prefix) + size + 16)
        out[: len(prefix)] = prefix
        encryptor = Cipher(algorithms.AES(keys[current]), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(MAGIC + kid + aad)
        at = len(prefix)
        with memoryview(out) as view:
            for piece in pieces:
                # update_into wants room for a block more than it writes (GCM writes
                # exactly the piece): the 16 octets of the tag leave that room at the end.
                at += encryptor.update_into(piece, view[at : at + len(piece) + 15])
            at += len(encryptor.finalize())  # GCM: nothing is held back
            view[at : at + 16] = encryptor.tag
        return out

    def reseal(self, blob: bytes, aad: bytes) -> bytes | None:
        """``blob`` sealed again under the current key with the same associated data, or
        None when the current key already sealed it. Raises SpoolCorrupt if it does not
        open."""
        if key_id_of(blob) == self.current_id:
            return None
        return self.seal(self.open(blob, aad), aad)

    def lookups(self, value: str, purpose: bytes) -> list[bytes]:
        """Keyed hashes (HMAC-SHA-256) of ``value``, one per key held, the current key's
        first: a sealed column is found by equality on its hash, which tells nothing without
        the key. Store the first; search with all, so rows from before a rotation still match.
        ``purpose`` keeps the hashes of different columns apart. A row's hash is made with
        the key that sealed the row, and ``keys reseal`` renews both together, so a row
        is found for as long as the key that sealed it is held."""
        self.refresh()
        return [
            hmac.new(
                hmac.new(key, b"c4f-lookup/1:" + purpose, hashlib.sha256).digest(),
                value.encode("utf-8"),
                hashlib.sha256,
            ).digest()
            for key in self._state[1].values()
        ]

    def open(self, blob: bytes, aad: bytes) -> bytes:
        key, kid, nonce, ct = self._unpack(blob)
        try:
            return AESGCM(key).decrypt(nonce, ct, MAGIC + kid + aad)
        except InvalidTag as exc:
            raise SpoolCorrupt("integrity check failed (altered, truncated or wrong key)") from exc

    def open_framed(self, blob: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """:meth:`open` of a value sealed as a 4-octet length, that many octets, then the
        rest (the spool's envelope and message): the two parts, the rest decrypted straight
        into its own bytes, so a large message is not held twice. Nothing is returned
        unless the whole value passes its check (SpoolCorrupt, as :meth:`open`)."""
        key, kid, nonce, ct = self._unpack(blob)
        body = ct[:-16]
        decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, bytes(ct[-16:]))).decryptor()
        decryptor.authenticate_additional_data(MAGIC + kid + aad)
        n = int.from_bytes(decryptor.update(body[:4]), "big")
        head = decryptor.update(body[4 : 4 + n])
        rest = decryptor.update(body[4 + n :])
        try:
            decryptor.finalize()
        except InvalidTag as exc:
            raise SpoolCorrupt("integrity check failed (altered, truncated or wrong key)") from exc
        return head, rest

    def _unpack(self, blob: bytes) -> tuple[bytes, bytes, bytes, memoryview]:
        """(key, key id, nonce, ciphertext with its tag) of a sealed blob."""
        if len(blob) < len(MAGIC) + 1 or not blob.startswith(MAGIC):
            raise SpoolCorrupt("not a sealed blob (bad magic or truncated)")
        n = blob[len(MAGIC)]
        start = len(MAGIC) + 1
        kid = blob[start : start + n]
        nonce = blob[start + n : start + n + _NONCE]
        ct = memoryview(blob)[start + n + _NONCE :]  # not copied (a large message)
        self.refresh()
        key = self._state[1].get(kid.decode("ascii", "replace"))
        if key is None:
            raise SpoolCorrupt(f"sealed with unknown key id {kid!r}")
        if len(nonce) != _NONCE or len(ct) < 16:
            raise SpoolCorrupt("sealed blob is truncated")
        return key, kid, nonce, ct
