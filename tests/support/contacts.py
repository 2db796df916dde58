"""The key approved contacts are sealed with, for tests that build contacts and filters on a
bare store (real key files, as ``init`` writes them next to the database).

Contacts are sealed at rest with the register's master key
(:mod:`gateway.directory.contacts_sealed`); a filter finds it through its settings.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.crypto import Keyring
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.register.ledger import Register
from gateway.register.record import Entry
from gateway.settings import Settings
from gateway.settings.register import RegisterSettings
from gateway.store import Store


def contacts_keyring(store: Store) -> Keyring:
    """The register's master key of a gateway whose database is ``store`` (made if missing)."""
    settings = RegisterSettings().resolved(store.path.parent)
    Register.create_keys(settings)
    return Keyring.load(settings.key_file)


def settings_for(store: Store) -> Settings:
    """Default settings for a gateway whose database is ``store``, its keys in place."""
    contacts_keyring(store)
    return dataclasses.replace(Settings(), source=store.path.parent / "gateway.toml")


def contacts_config(folder: Path, extra: str = "") -> Path:
    """The config of the contacts commands' tests: maildir delivery, the policies that read
    the list, the register's keys in place (changes go to its trail); ``extra`` is more
    TOML."""
    Register.create_keys(RegisterSettings().resolved(folder))
    path = folder / "gateway.toml"
    path.write_text(
        '[delivery]\ntransport = "maildir"\n'
        '[pipeline]\nfilters = ["sender", "fax_route", "contacts"]\n' + extra,
        encoding="utf-8",
    )
    return path


def approved(address: str, name: str, organisation: str, *, by: str = "Sam Admin") -> Contact:
    """An address approved today for a year, attested as no fax route, for ``repo.add``."""
    today = datetime.now(UTC).date()
    return Contact(
        0,
        "address",
        address,
        name,
        organisation,
        "",
        by,
        today.isoformat(),
        "phoned the switchboard back",
        today.replace(year=today.year + 1).isoformat(),
        not_fax_by=by,
        not_fax_on=today.isoformat(),
    )


def contacts_state(config: Path) -> tuple[list[Contact], list[dict[str, Any]], list[Entry]]:
    """The contacts, their audit rows and every register entry of the gateway at ``config``."""
    store = Store(config.parent / "gateway.db")
    try:
        register = Register.from_settings(store, RegisterSettings().resolved(config.parent))
        repo = ContactRepository(store, keyring=register.keyring)
        return repo.all(), repo.history(), register.entries()
    finally:
        store.close()
