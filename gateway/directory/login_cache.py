"""Logins verified once: a short-lived memory of passwords that matched (as Dovecot's auth cache).

A staff password is checked with scrypt at a high cost (``[auth] password_hash_cost``), and
mail clients log in again for every connection. After a successful check the directory keeps
an HMAC-SHA-256, under a random key made when the process starts and never stored, of the
login, the stored hash, the role and the password, for ``[auth] cache_ttl`` seconds: the
same password again within that time is recognised without scrypt. The password itself is
never kept, and the digest is worthless outside this process.

Kept per process. Because the stored hash and role are part of what is digested, a
password or role changed by any process (the ``staff`` commands run in their own) makes the
next login miss, and a removed account has no row to match. Changes made through this
process's directory, and every failed login, the console's second-factor step included
(so every failure that counts towards a lockout), also forget the account's entry at once.
Failures are never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable


class VerifiedLogins:
    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``ttl``: seconds a verified login is remembered; 0 remembers nothing."""
        self.ttl = ttl
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[bytes, float]] = {}  # login: (digest, expiry)
        self._lock = threading.Lock()

    def _digest(self, login: str, stored: str, role: str, password: str) -> bytes:
        message = json.dumps([login, stored, role, password]).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, login: str, stored: str, role: str, password: str) -> bool:
        """True when this password matched this stored hash less than ``ttl`` ago."""
        if self.ttl <= 0:
            return False
        with self._lock:
            entry = self._entries.get(login)
            if entry is not None and entry[1] <= self.clock():
                del self._entries[login]
                entry = None
        if entry is None:
            return False
        return hmac.compare_digest(entry[0], self._digest(login, stored, role, password))

    def remember(self, login: str, stored: str, role: str, password: str) -> None:
        """After a successful hash check only."""
        if self.ttl <= 0:
            return
        digest = self._digest(login, stored, role, password)
        with self._lock:
            self._entries[login] = (digest, self.clock() + self.ttl)

    def forget(self, login: str) -> None:
        with self._lock:
            self._entries.pop(login.lower(), None)
