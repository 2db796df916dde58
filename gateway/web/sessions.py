"""Console sessions: a random token in a cookie, the session itself in SQLite.

Only the token's SHA-256 is stored, so a copy of the database signs nobody in. A session
ends after ``session_idle_timeout`` seconds without a request and after
``session_max_age`` whatever happens (OWASP Session Management: idle and absolute
timeouts). The token changes when the password step is followed by the TOTP step, so a
token seen before sign-in is worthless after it (session fixation). A new password, a
role taken away, a second factor reset or a removed account ends every session of that
person (:func:`end_sessions`, which ``c4f-gateway staff`` calls inside the same
transaction as the change: a password changed because someone else may know it must not
leave their console session open).

What a session remembers between pages (the register filter, the contact search) can
be personal data: it is sealed with the spool keyring, bound to the session.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.crypto import Keyring, SealedColumn
from gateway.errors import SpoolCorrupt
from gateway.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_sessions (
    key TEXT PRIMARY KEY,            -- SHA-256 of the cookie token
    login TEXT NOT NULL,
    stage TEXT NOT NULL,             -- 'totp': password given, code still due; 'full'
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    state BLOB
);
CREATE INDEX IF NOT EXISTS web_sessions_login ON web_sessions (login);
"""

Stage = Literal["totp", "full"]


def end_sessions(conn: sqlite3.Connection, login: str) -> int:
    """End every console session of ``login`` inside the caller's transaction.

    Runs where the console may never have been started (the table does not exist yet):
    then there is nothing to end."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'web_sessions'"
    ).fetchone()
    if found is None:
        return 0
    return conn.execute("DELETE FROM web_sessions WHERE login = ?", (login.lower(),)).rowcount


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    token: str
    login: str
    stage: Stage
    csrf: str
    created: float
    last_seen: float
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return _key(self.token)


class SessionStore:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        *,
        idle_timeout: float,
        max_age: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.clock = clock
        store.ensure(SCHEMA)

    def create(self, login: str, stage: Stage) -> Session:
        now = self.clock()
        s = Session(
            secrets.token_urlsafe(32), login.lower(), stage, secrets.token_urlsafe(32), now, now
        )
        with self.store.transaction() as conn:
            # Expired sessions go whenever a new one starts: the table stays small.
            conn.execute(
                "DELETE FROM web_sessions WHERE last_seen < ? OR created < ?",
                (now - self.idle_timeout, now - self.max_age),
            )
            conn.execute(
                "INSERT INTO web_sessions (key, login, stage, csrf, created, last_seen, state)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (s.key, s.login, s.stage, s.csrf, s.created, s.last_seen),
            )
        return s

    def get(self, token: str) -> Session | None:
        """The live session for ``token`` (its idle clock restarted), or None."""
        if not token or len(token) > 100:
            return None
        key = _key(token)
        rows = self.store.query("SELECT * FROM web_sessions WHERE key = ?", (key,))
        if not rows:
            return None
        r = rows[0]
        now = self.clock()
        if now - r["last_seen"] > self.idle_timeout or now - r["created"] > self.max_age:
            self.store.execute("DELETE FROM web_sessions WHERE key = ?", (key,))
            return None
        self.store.execute("UPDATE web_sessions SET last_seen = ? WHERE key = ?", (now, key))
        return Session(
            token, r["login"], r["stage"], r["csrf"], r["created"], now, self._open(key, r["state"])
        )

    def promote(self, session: Session) -> Session:
        """The TOTP step passed: a new token and CSRF token for the full session."""
        self.end(session.token)
        full = self.create(session.login, "full")
        full.state = session.state
        return full

    def save_state(self, session: Session) -> None:
        blob = self.keyring.seal(json.dumps(session.state).encode(), self._aad(session.key))
        self.store.execute("UPDATE web_sessions SET state = ? WHERE key = ?", (blob, session.key))

    def end(self, token: str) -> None:
        self.store.execute("DELETE FROM web_sessions WHERE key = ?", (_key(token),))

    def end_all(self, login: str) -> int:
        """Sign ``login`` out everywhere (role removed, TOTP reset, account deleted)."""
        with self.store.transaction() as conn:
            return end_sessions(conn, login)

    @staticmethod
    def _aad(key: str) -> bytes:
        return b"web-session:" + key.encode()

    def _open(self, key: str, blob: bytes | None) -> dict[str, Any]:
        if not blob:
            return {}
        try:
            found = json.loads(self.keyring.open(blob, self._aad(key)))
        except (SpoolCorrupt, ValueError):
            return {}  # a lost filter is harmless; the session itself still holds
        return found if isinstance(found, dict) else {}


# What ``keys reseal spool`` seals again: each session's state, bound to its key.
SEALED = [SealedColumn("web_sessions", "state", lambda r: SessionStore._aad(r["key"]))]
