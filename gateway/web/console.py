"""What the console works on: the same store, register, contacts, spool, held messages
and staff directory objects the CLI opens, built once from the gateway's settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from filters.fax_route import FaxRoutes, load_providers, providers_path
from gateway.crypto import Keyring
from gateway.directory import public_domains
from gateway.directory.contacts import ContactRepository
from gateway.directory.mx_sweep import MXResolver, default_resolver
from gateway.directory.staff import StaffDirectory
from gateway.errors import ConfigError
from gateway.holds.service import Holds
from gateway.queue.spool import Spool
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.settings.register import register_settings
from gateway.settings.web import WebSettings, web_settings
from gateway.store import Store
from gateway.throttle import LoginThrottle
from gateway.web.sessions import SessionStore, end_sessions
from gateway.web.totp import TotpStore
from gateway.web.verify_monitor import VerifyMonitor


@dataclass
class Console:
    settings: Settings
    web: WebSettings
    store: Store
    staff: StaffDirectory
    register: Register
    contacts: ContactRepository
    spool: Spool
    holds: Holds
    totp: TotpStore
    sessions: SessionStore
    throttle: LoginThrottle
    verifier: VerifyMonitor
    fax_routes: FaxRoutes
    resolver: MXResolver
    clock: Callable[[], float]

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        web: WebSettings | None = None,
        clock: Callable[[], float] = time.time,
        resolver: MXResolver | None = None,
    ) -> Console:
        web = web or web_settings(settings)
        database = settings.storage.database
        if not database.exists():
            raise ConfigError(f"storage.database: no database at {database} (run `init` first)")
        store = Store(database)
        keyring = Keyring.load(settings.storage.spool_key_file)
        register = Register.from_settings(store, register_settings(settings))
        # Decisions go through the engine's own Holds (register entry, notices, release in
        # one transaction); `serve`'s worker picks an approved message up from the database.
        holds = Holds.open(store, settings, register)
        holds.clock = clock
        a = settings.auth
        options = settings.filter.get("fax_route", {})
        return cls(
            settings=settings,
            web=web,
            store=store,
            staff=StaffDirectory(
                store,
                sign_out=end_sessions,
                cost=settings.auth.password_hash_cost,
                cache_ttl=settings.auth.cache_ttl,
            ),
            register=register,
            contacts=ContactRepository(
                store,
                lambda: datetime.fromtimestamp(clock(), UTC),
                keyring=register.keyring,  # contacts are sealed with the register's key
                public_domains=public_domains.from_settings(settings.filter, settings.base_dir),
            ),
            spool=Spool(store, keyring, clock=clock),
            holds=holds,
            totp=TotpStore(store, keyring, clock),
            sessions=SessionStore(
                store,
                keyring,
                idle_timeout=web.session_idle_timeout,
                max_age=web.session_max_age,
                clock=clock,
            ),
            # The same limits as SMTP AUTH (AUTH-1; NIST SP 800-63B 5.2.2), its own counts.
            throttle=LoginThrottle(
                per_client=a.max_failures_per_client,
                per_account=a.max_failures_per_account,
                window=a.lockout_seconds,
                clock=clock,
            ),
            verifier=VerifyMonitor(register, web.verify_interval, clock),
            fax_routes=FaxRoutes(
                load_providers(providers_path(options.get("providers_file"), settings.base_dir))
            ),
            resolver=resolver or default_resolver(settings.dns),
            clock=clock,
        )

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> int:
        """One entry in the register's admin trail (sign-ins and every console change)."""
        with self.store.transaction() as conn:
            return self.register.record_admin(conn, actor, action, details)

    def recording_contacts(self) -> ContactRepository:
        """The console's contacts, each change also entered in the register's admin trail
        in the change's own transaction (as the CLI records it): the contact and its entry
        are written together or not at all."""
        repo = self.contacts
        return ContactRepository(
            repo.store,
            repo.clock,
            keyring=repo.keyring,
            register_audit=self.register.record_admin,
            public_domains=repo.public_domains,
        )

    def close(self) -> None:
        self.store.close()
