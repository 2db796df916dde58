"""Staff accounts: a login (the staff member's own address), a scrypt password hash, aliases.

Passwords are only ever hashed here; they are never stored, logged or echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.store import Store

if TYPE_CHECKING:
    from gateway.register.ledger import AdminAudit

SCHEMA = """
CREATE TABLE IF NOT EXISTS staff (
    login TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    role TEXT NOT NULL DEFAULT 'staff',
    managers TEXT NOT NULL DEFAULT '[]'
);
"""
# Columns added after the first release: (name, definition) for databases created before.
_ADDED_COLUMNS = [
    ("role", "TEXT NOT NULL DEFAULT 'staff'"),
    ("managers", "TEXT NOT NULL DEFAULT '[]'"),
]

# Ends a person's console sessions inside the caller's transaction (gateway.web.sessions).
SignOut = Callable[[sqlite3.Connection, str], object]

# staff: sends mail; manager: also reviews the register and approves held messages;
# admin: also keeps the contacts list and the staff accounts.
ROLES = ("staff", "manager", "admin")

# scrypt parameters: 32 MiB of memory per check; about 0.1 s on one core.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str, *, n: int = _N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_R, p=_P, maxmem=_MAXMEM)
    b64 = base64.b64encode
    return f"scrypt${n}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


# Checked when the login is unknown, so an unknown user costs as much as a wrong password (AUTH-2).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StaffMember:
    login: str
    aliases: tuple[str, ...]
    created: float
    role: str = "staff"
    managers: tuple[str, ...] = ()  # line managers' logins

    def owns(self, address: str) -> bool:
        """True when ``address`` is the member's own address or one of their aliases."""
        a = address.lower()
        return a == self.login.lower() or a in (x.lower() for x in self.aliases)


class StaffDirectory:
    def __init__(
        self,
        store: Store,
        *,
        audit: AdminAudit | None = None,
        actor: str = "",
        sign_out: SignOut | None = None,
    ) -> None:
        """``audit`` (the register's ``record_admin``) records each change made through
        this object, as ``actor``, in the same transaction as the change. ``sign_out``
        ends the person's console sessions in the transaction that changes their
        password or removes them: the old password, or the old account, opens nothing."""
        self.store = store
        self.audit = audit
        self.actor = actor
        self.sign_out = sign_out
        store.ensure(SCHEMA)
        have = {r["name"] for r in store.query("PRAGMA table_info(staff)")}
        for name, definition in _ADDED_COLUMNS:
            if name not in have:
                store.execute(f"ALTER TABLE staff ADD COLUMN {name} {definition}")

    def add(
        self,
        login: str,
        password: str,
        aliases: tuple[str, ...] = (),
        *,
        role: str = "staff",
        managers: tuple[str, ...] = (),
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        with self.store.transaction() as conn:
            self._record(
                conn, "staff add", login, role=role, aliases=list(aliases), managers=list(managers)
            )
            conn.execute(
                "INSERT INTO staff (login, password_hash, aliases, created, role, managers)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    login.lower(),
                    hash_password(password),
                    json.dumps(list(aliases)),
                    time.time(),
                    role,
                    json.dumps([m.lower() for m in managers]),
                ),
            )

    def set_role(self, login: str, role: str) -> bool:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        return self._write(
            "UPDATE staff SET role = ? WHERE login = ?",
            (role, login.lower()),
            "staff role",
            login,
            role=role,
        )

    def set_managers(self, login: str, managers: tuple[str, ...]) -> bool:
        return self._write(
            "UPDATE staff SET managers = ? WHERE login = ?",
            (json.dumps([m.lower() for m in managers]), login.lower()),
            "staff managers",
            login,
            managers=list(managers),
        )

    def set_password(self, login: str, password: str) -> bool:
        return self._write(
            "UPDATE staff SET password_hash = ? WHERE login = ?",
            (hash_password(password), login.lower()),
            "staff password changed",
            login,
            ends_sessions=True,
        )

    def set_aliases(self, login: str, aliases: tuple[str, ...]) -> bool:
        return self._write(
            "UPDATE staff SET aliases = ? WHERE login = ?",
            (json.dumps([a.lower() for a in aliases]), login.lower()),
            "staff aliases",
            login,
            aliases=list(aliases),
        )

    def remove(self, login: str) -> bool:
        return self._write(
            "DELETE FROM staff WHERE login = ?",
            (login.lower(),),
            "staff remove",
            login,
            ends_sessions=True,
        )

    def _write(
        self,
        sql: str,
        params: tuple[str, ...],
        action: str,
        login: str,
        *,
        ends_sessions: bool = False,
        **details: object,
    ) -> bool:
        """One change and its register record, in one transaction; False if no such login."""
        with self.store.transaction() as conn:
            if conn.execute(sql, params).rowcount != 1:
                return False
            if ends_sessions and self.sign_out is not None:
                self.sign_out(conn, login)
            self._record(conn, action, login, **details)
        return True

    def _record(self, conn: sqlite3.Connection, action: str, login: str, **details: object) -> None:
        if self.audit is not None:
            self.audit(conn, self.actor, action, {"login": login.lower(), **details})

    def get(self, login: str) -> StaffMember | None:
        rows = self.store.query("SELECT * FROM staff WHERE login = ?", (login.lower(),))
        return _member(rows[0]) if rows else None

    def list(self) -> list[StaffMember]:
        rows = self.store.query("SELECT * FROM staff ORDER BY login")
        return [_member(r) for r in rows]

    def authenticate(self, login: str, password: str) -> StaffMember | None:
        """Blocking (scrypt): call from a worker thread. Same cost for unknown logins."""
        rows = self.store.query(
            "SELECT * FROM staff WHERE login = ?",
            (login.lower(),),
        )
        if not rows:
            check_password(password, _DUMMY_HASH)
            return None
        if not check_password(password, rows[0]["password_hash"]):
            return None
        return _member(rows[0])


def _member(r: sqlite3.Row) -> StaffMember:
    return StaffMember(
        login=r["login"],
        aliases=tuple(json.loads(r["aliases"])),
        created=r["created"],
        role=r["role"],
        managers=tuple(json.loads(r["managers"])),
    )
