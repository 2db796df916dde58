"""Password hashes: scrypt, with its parameters stored in each hash.

Passwords are only ever hashed here; they are never stored, logged or echoed. Stored
parameters are checked before use (no row can ask for more memory than a bound), and at
most :data:`CONCURRENT_HASHES` scrypt runs go at once in a process.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
import threading

from gateway.settings import Auth

# scrypt with N = 2**cost, r = 8, p = 1; the default cost is [auth] password_hash_cost's.
DEFAULT_COST = Auth().password_hash_cost
_R, _P = 8, 1
# Stored parameters are checked before use: no row can ask for more memory than this.
_MAX_MEMORY = 2**30 + 2**20
# At most this many scrypt runs at once, in every thread of the process (each takes 128 MiB
# at the default cost): a burst of logins waits here rather than exhausting memory, and
# more runs than cores would not end any sooner.
CONCURRENT_HASHES = max(1, min(4, os.cpu_count() or 1))
_SLOTS = threading.BoundedSemaphore(CONCURRENT_HASHES)


def _memory(n: int, r: int, p: int) -> int:
    """The bytes OpenSSL's scrypt allocates: 128·r·(N + 2) for V, 128·r·p for B."""
    return 128 * r * (n + 2) + 128 * r * p


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range")
    need = _memory(n, r, p)
    if need > _MAX_MEMORY:
        raise ValueError("scrypt parameters need too much memory")
    with _SLOTS:
        return hashlib.scrypt(
            password.encode(), salt=salt, n=n, r=r, p=p, maxmem=need + 2**20, dklen=64
        )


def hash_password(password: str, *, n: int = 2**DEFAULT_COST) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, _R, _P)
    b64 = base64.b64encode
    return f"scrypt${n}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def _parameters(encoded: str) -> tuple[int, int, int] | None:
    """(N, r, p) of a stored scrypt hash; None if it is not one."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        return int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None


def check_password(password: str, encoded: str) -> bool:
    params = _parameters(encoded)
    if params is None:
        return False
    salt, digest = encoded.split("$")[4:]
    try:
        actual = _scrypt(password, base64.b64decode(salt), *params)
        expected = base64.b64decode(digest)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_upgrade(encoded: str, cost: int) -> bool:
    """True when a (verified) stored hash is weaker than scrypt at ``cost``."""
    params = _parameters(encoded)
    return params is not None and (params[0] < 2**cost or params[1] < _R)


@functools.lru_cache(maxsize=4)
def dummy_hash(cost: int) -> str:
    """Checked when the login is unknown, so an unknown user costs as much as a wrong
    password (AUTH-2); made at the first such login, not when the module is imported."""
    return hash_password(secrets.token_urlsafe(16), n=2**cost)
