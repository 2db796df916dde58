"""Everything ``serve`` opens before it listens, in one place: ``check-config`` runs it too.

:func:`open_parts` loads every key file, certificate and data file, opens the database,
builds the filters and the transport, and makes sure each folder ``serve`` writes to is
writable (the database's folder and its large bodies' folder, the register's
checkpoints, the MAC key's folder when it evolves, the development Maildir). What it
cannot do stops start-up as one
``FILE: KEY: REASON`` line naming the setting to fix, so ``serve`` is never the first to
notice a problem ``check-config`` let through.
"""

from __future__ import annotations

import os
import re
import sqlite3
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NoReturn, TypeVar

from filters.fax_route import load_providers, providers_path
from gateway.crypto import Keyring
from gateway.errors import ConfigError
from gateway.pipeline import Filter, FilterContext, load_filters
from gateway.queue.bodies import bodies_folder
from gateway.queue.smtp_transport import SmtpTransport
from gateway.queue.transports import MaildirTransport, Transport
from gateway.register.codec import MacKey
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.store import Store
from gateway.tls import ServerTLS, client_context

T = TypeVar("T")
# An error that already names its setting ("filter.disclaimer.file: ...", "tls: ...").
_NAMES_KEY = re.compile(r"^[a-z_]+(\.[a-z_]+)*: ")

# The filters that enforce the confidentiality policy, and what is lost without each.
# A chain without one of them runs only with [pipeline] allow_partial_pipeline = true.
POLICY_FILTERS = {
    "sender": "staff can send as someone else",
    "fax_route": "fax-to-email addresses are not refused",
    "contacts": "recipients are not checked against the approved contacts",
    "disclosure": "consent and safeguarding tags are not read",
    "media": "photos and videos leave without a manager's approval",
    "approval": "messages are not held for approval",
    "disclaimer": "the mandatory confidentiality notice is not added",
}


@dataclass
class Parts:
    """What :func:`open_parts` opened; the caller owns ``store`` and closes it."""

    store: Store
    keyring: Keyring
    register: Register | None
    filters: list[Filter]
    transport: Transport
    tls: ServerTLS  # the listeners' TLS; serve reloads it on SIGHUP


def missing_policy(chain: Sequence[str]) -> str:
    """Which policy filters ``chain`` lacks and what that means; empty when it has them all."""
    missing = [name for name in POLICY_FILTERS if name not in chain]
    if not missing:
        return ""
    return (
        f"policy filter(s) not in the pipeline: {', '.join(missing)}; "
        + "; ".join(POLICY_FILTERS[name] for name in missing)
        + " (the centre's confidentiality policy is not fully enforced)"
    )


def open_parts(
    settings: Settings,
    *,
    with_register: bool = True,
    transport: Transport | None = None,
    clock: Callable[[], float] = time.time,
) -> Parts:
    """Open what ``serve`` runs on, or raise ConfigError ``FILE: KEY: REASON``.

    ``with_register=False`` and ``transport`` are for tests that bring their own recorder
    or transport; ``serve`` and ``check-config`` pass neither.
    """
    step = _Steps(settings)
    missing = missing_policy(settings.pipeline.filters)
    if missing and not settings.pipeline.allow_partial_pipeline:
        step.fail(
            "pipeline.filters",
            f"{missing}; list every policy filter, or set allow_partial_pipeline = true "
            "in [pipeline] (development only)",
        )
    db = settings.storage.database
    step("storage.database", lambda: writable_dir(db.parent))
    step("storage.database", lambda: writable_dir(bodies_folder(db)))  # large messages
    store = step("storage.database", lambda: _open_store(db))
    try:
        keyring = step(
            "storage.spool_key_file", lambda: Keyring.load(settings.storage.spool_key_file)
        )
        register = None
        reg = settings.register
        # Contacts are sealed with the register's key: the filters need it even without a register.
        step("register.key_file", lambda: Keyring.load(reg.key_file))
        if with_register:
            step("register.mac_key_file", lambda: MacKey.load(reg.mac_key_file))
            if reg.evolve_mac_key:  # the key file is replaced at every checkpoint
                step("register.mac_key_file", lambda: writable_dir(reg.mac_key_file.parent))
            step("register.checkpoint_dir", lambda: writable_dir(reg.checkpoint_dir))
            register = step("register", lambda: Register.from_settings(store, reg, clock=clock))
        tls = _tls(step, settings)
        if transport is None:
            transport = _transport(step, settings)
        chain = settings.pipeline.filters
        if "fax_route" in chain or "contacts" in chain:  # contacts: the daily MX sweep
            raw = settings.filter.get("fax_route", {}).get("providers_file")
            step(
                "filter.fax_route.providers_file",
                lambda: load_providers(providers_path(raw, settings.base_dir)),
            )
        context = FilterContext(settings=settings, store=store)
        built: list[Filter] = []
        for name in chain:
            options = {name: settings.filter.get(name, {})}
            built += step(f"filter.{name}", partial(load_filters, [name], options, context))
    except BaseException:
        store.close()
        raise
    return Parts(store, keyring, register, built, transport, tls)


def writable_dir(path: Path) -> Path:
    """Create ``path`` (0700) if missing and prove a file can be written in it."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: not a folder")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd, probe = tempfile.mkstemp(prefix=".c4f-write-check-", dir=path)
    except OSError as exc:
        raise ConfigError(f"{path}: folder not writable: {exc.strerror}") from exc
    os.close(fd)
    os.unlink(probe)
    return path


def _open_store(path: Path) -> Store:
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{path}: database not writable")
    store = Store(path)
    try:
        store.query("PRAGMA user_version")  # a file that is not a database fails here
    except BaseException:
        store.close()
        raise
    return store


def _readable(path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _tls(step: _Steps, settings: Settings) -> ServerTLS:
    step("tls.cert_file", lambda: _readable(settings.tls.cert_file))
    step("tls.key_file", lambda: _readable(settings.tls.key_file))
    return step("tls", lambda: ServerTLS(settings.tls.cert_file, settings.tls.key_file))


def _transport(step: _Steps, settings: Settings) -> Transport:
    if settings.delivery.transport == "maildir":
        maildir = settings.delivery.maildir
        built = step("delivery.maildir", lambda: MaildirTransport(maildir))
        for sub in ("tmp", "new"):
            step("delivery.maildir", partial(writable_dir, maildir / sub))
        return built
    up = settings.upstream
    ca_file = up.ca_file
    if ca_file is not None:
        step("upstream.ca_file", lambda: _readable(ca_file))
        step("upstream.ca_file", lambda: client_context(ca_file))
    key = "upstream.credentials_file" if up.credentials_file else "upstream"
    return step(key, lambda: SmtpTransport(up, settings.hostname))


class _Steps:
    """Run one opening step; its error becomes ``FILE: KEY: REASON``."""

    def __init__(self, settings: Settings) -> None:
        self.file = str(settings.source)

    def __call__(self, key: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except (ConfigError, sqlite3.Error, OSError, ssl.SSLError) as exc:
            reason = _reason(exc).removeprefix(f"{self.file}: ")
            if _NAMES_KEY.match(reason):
                raise ConfigError(f"{self.file}: {reason}") from exc
            raise ConfigError(f"{self.file}: {key}: {reason}") from exc

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ConfigError(f"{self.file}: {key}: {reason}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)
