"""TOTP second factor for console sign-in (RFC 6238, 30-second steps, 6 digits).

Secrets live in the shared SQLite store sealed with the spool keyring, bound to the
login, so a copy of the database alone reveals none. A code is accepted one step
either side of now (clock drift, RFC 6238 section 5.2) and only once: the step it
matched is stored, and a code from that step or an earlier one is refused (replay).
Enrolment is a command (``c4f-gateway web totp-enrol LOGIN``), run by an admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyotp
from pyotp import OTPVerificationError

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt
from gateway.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_totp (
    login TEXT PRIMARY KEY,
    secret BLOB NOT NULL,            -- sealed base32 secret
    enrolled REAL NOT NULL,
    last_step INTEGER NOT NULL DEFAULT 0
);
"""


class TotpStore:
    def __init__(
        self, store: Store, keyring: Keyring, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        store.ensure(SCHEMA)

    @staticmethod
    def _aad(login: str) -> bytes:
        return b"totp:" + login.lower().encode()

    def enrol(self, login: str) -> str:
        """A new secret for ``login`` (replacing any old one); returns it in base32."""
        secret = pyotp.random_base32()
        sealed = self.keyring.seal(secret.encode(), self._aad(login))
        self.store.execute(
            "INSERT INTO web_totp (login, secret, enrolled, last_step) VALUES (?, ?, ?, 0)"
            " ON CONFLICT(login) DO UPDATE SET secret = excluded.secret,"
            " enrolled = excluded.enrolled, last_step = 0",
            (login.lower(), sealed, self.clock()),
        )
        return secret

    def remove(self, login: str) -> bool:
        return self.store.execute("DELETE FROM web_totp WHERE login = ?", (login.lower(),)) == 1

    def enrolled(self, login: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM web_totp WHERE login = ?", (login.lower(),)))

    def logins(self) -> set[str]:
        return {r["login"] for r in self.store.query("SELECT login FROM web_totp")}

    @staticmethod
    def uri(secret: str, login: str, issuer: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=login.lower(), issuer_name=issuer)

    def check(self, login: str, code: str) -> bool:
        """True once per valid code; False for a wrong, stale or replayed one."""
        code = code.strip().replace(" ", "")
        if len(code) != 6 or not code.isdigit():
            return False
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT secret, last_step FROM web_totp WHERE login = ?", (login.lower(),)
            ).fetchone()
            if row is None:
                return False
            try:
                secret = self.keyring.open(row["secret"], self._aad(login)).decode()
            except SpoolCorrupt:
                return False
            try:
                step = pyotp.TOTP(secret).verify_and_get_timecode(
                    code, for_time=self.clock(), valid_window=1
                )
            except OTPVerificationError:
                return False
            if step <= row["last_step"]:
                return False  # already used (or older than a used one): replay
            conn.execute("UPDATE web_totp SET last_step = ? WHERE login = ?", (step, login.lower()))
        return True
