"""The key approved contacts are sealed with, for tests that build contacts and filters on a
bare store (real key files, as ``init`` writes them next to the database).

Contacts are sealed at rest with the register's master key
(:mod:`gateway.directory.contacts_sealed`); a filter finds it through its settings.
"""

from __future__ import annotations

import dataclasses

from gateway.crypto import Keyring
from gateway.register.ledger import Register
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
