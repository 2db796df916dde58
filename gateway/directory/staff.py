"""Staff accounts: a login (the staff member's own address), a scrypt password hash
(:mod:`.passwords`), aliases, a role and line managers.

A hash carries its own scrypt parameters, so hashes made at an older, lower cost still
verify; each is replaced at the account's next successful login (SMTP AUTH or console
sign-in) by one at the directory's cost (``[auth] password_hash_cost``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from gateway.directory.login_cache import VerifiedLogins
from gateway.directory.passwords import (
    DEFAULT_COST,
    check_password,
    dummy_hash,
    hash_password,
    needs_upgrade,
)
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


def step_1_add_roles(store: Store) -> int:
    """Database step 1 (:mod:`gateway.schema`): a staff table from the first release gets
    the role and line-manager columns (everyone ``staff``, no managers). Returns how many
    columns it added."""
    have = {r["name"] for r in store.query("PRAGMA table_info(staff)")}
    if not have:
        return 0  # no staff table yet: StaffDirectory creates it as it is now
    added = 0
    for name, definition in _ADDED_COLUMNS:
        if name not in have:
            store.execute(f"ALTER TABLE staff ADD COLUMN {name} {definition}")
            added += 1
    return added


# Ends a person's console sessions inside the caller's transaction (gateway.web.sessions).
SignOut = Callable[[sqlite3.Connection, str], object]

# staff: sends mail; manager: also reviews the register and approves held messages;
# admin: also keeps the contacts list and the staff accounts.
ROLES = ("staff", "manager", "admin")

log = structlog.get_logger("gateway.staff")


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
        cost: int = DEFAULT_COST,
        cache_ttl: float = 0.0,
        verify: Callable[[str, str], bool] = check_password,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``audit`` (the register's ``record_admin``) records each change made through
        this object, as ``actor``, in the same transaction as the change. ``sign_out``
        ends the person's console sessions in the transaction that changes their
        password or removes them: the old password, or the old account, opens nothing.
        ``cost``: new hashes are scrypt with N = 2**cost (``[auth] password_hash_cost``).
        ``cache_ttl``: seconds a verified login skips the hash check (``[auth] cache_ttl``,
        :mod:`gateway.directory.login_cache`); 0, the default here, checks every time.
        ``verify(password, stored_hash)`` is the hash check (:func:`check_password`)."""
        self.store = store
        self.audit = audit
        self.actor = actor
        self.sign_out = sign_out
        self.cost = cost
        self.verify = verify
        self.verified = VerifiedLogins(cache_ttl, clock=clock)
        store.ensure(SCHEMA)

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
                    hash_password(password, n=2**self.cost),
                    json.dumps(list(aliases)),
                    time.time(),
                    role,
                    json.dumps([m.lower() for m in managers]),
                ),
            )

    def set_role(self, login: str, role: str) -> bool:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        self.verified.forget(login)
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
        self.verified.forget(login)
        return self._write(
            "UPDATE staff SET password_hash = ? WHERE login = ?",
            (hash_password(password, n=2**self.cost), login.lower()),
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
        self.verified.forget(login)
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
        """Blocking (scrypt): call from a worker thread. Same cost for unknown logins.
        A hash below the directory's cost is replaced once the password has matched.
        A login verified less than ``cache_ttl`` ago, with the same password, stored hash
        and role, skips the hash check; a failure forgets the account's verified login."""
        row = self._row(login)
        if row is None:
            self.verify(password, dummy_hash(self.cost))
            return None
        stored, role = row["password_hash"], row["role"]
        if self.verified.verified(row["login"], stored, role, password):
            return _member(row)
        if not self.verify(password, stored):
            self.verified.forget(row["login"])
            return None
        if needs_upgrade(stored, self.cost):
            stored = self._upgrade(row["login"], stored, password) or stored
        self.verified.remember(row["login"], stored, role, password)
        return _member(row)

    def recently_verified(self, login: str, password: str) -> StaffMember | None:
        """The member, if this login and password were verified less than ``cache_ttl``
        ago and the stored hash and role are unchanged; else None (then
        :meth:`authenticate`). No hash check: it may run on the event loop."""
        row = self._row(login)
        if row is None:
            return None
        if not self.verified.verified(row["login"], row["password_hash"], row["role"], password):
            return None
        return _member(row)

    def _row(self, login: str) -> sqlite3.Row | None:
        rows = self.store.query("SELECT * FROM staff WHERE login = ?", (login.lower(),))
        return rows[0] if rows else None

    def _upgrade(self, login: str, stored: str, password: str) -> str | None:
        """Re-hash at the current cost. Only if the hash is still the one checked (a
        password changed meanwhile wins); the login succeeds even if this cannot be saved.
        Returns the new stored hash, or None if it was not saved."""
        new = hash_password(password, n=2**self.cost)
        try:
            with self.store.transaction() as conn:
                changed = conn.execute(
                    "UPDATE staff SET password_hash = ? WHERE login = ? AND password_hash = ?",
                    (new, login, stored),
                ).rowcount
        except (sqlite3.Error, OSError) as exc:
            log.warning("password_hash_upgrade_failed", login=login, error=type(exc).__name__)
            return None
        if not changed:
            return None
        log.info("password_hash_upgraded", login=login, cost=self.cost)
        return new


def _member(r: sqlite3.Row) -> StaffMember:
    return StaffMember(
        login=r["login"],
        aliases=tuple(json.loads(r["aliases"])),
        created=r["created"],
        role=r["role"],
        managers=tuple(json.loads(r["managers"])),
    )
