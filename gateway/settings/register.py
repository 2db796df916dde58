"""The ``[register]`` settings section: where the disclosure register's keys and
checkpoints live, how long entries are kept and what to do when consent is not stated.

Hooked into :class:`gateway.settings.Settings` as ``register: RegisterSettings``; until
then callers use :func:`register_settings`, which falls back to these defaults resolved
against the config file's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.errors import ConfigError

MissingConsent = Literal["accept-incomplete", "refuse"]


@dataclass(frozen=True)
class RegisterSettings:
    # AES-256-GCM master key (gateway.crypto.Keyring format) that wraps each entry's data key.
    key_file: Path = Path("keys/register.key")
    # HMAC-SHA-256 key for the chain: separate from the spool key and the master key.
    mac_key_file: Path = Path("keys/register-mac.key")
    # Signed head files, one per day. Copy this folder off the machine too: a checkpoint
    # held elsewhere is what reveals a cut-off tail (Ma & Tsudik).
    checkpoint_dir: Path = Path("register-checkpoints")
    # Policy, "Storage of information": disposed of after three years.
    retention_days: int = 1095
    # An external message with no consent status: record it as incomplete, or refuse it
    # with a reply that says how to tag it (policy, "Inter-agency working").
    missing_consent: MissingConsent = "accept-incomplete"
    # Ratchet the MAC key forward at every checkpoint (forward integrity, Bellare & Yee):
    # keep a copy of the first key file offline to verify the whole chain later.
    evolve_mac_key: bool = False
    # How often `serve` writes a checkpoint (seconds); files still rotate daily. Entries
    # written since the last one could be cut off unnoticed (`register verify` counts them),
    # so the window is kept short.
    checkpoint_interval: float = 300.0
    # Policy, "Inter-agency working": for a disclosure made without consent, whether the
    # person was informed is due this many days after sending (`register list --inform-due`,
    # the console's front page and the managers' daily reminder list it until answered).
    inform_within_days: int = 14

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ConfigError("register.retention_days: must be at least 1")
        if self.checkpoint_interval <= 0:
            raise ConfigError("register.checkpoint_interval: must be greater than zero")
        if self.inform_within_days < 0:
            raise ConfigError("register.inform_within_days: must be 0 (due at once) or more")

    def resolved(self, base: Path) -> RegisterSettings:
        """Relative paths made absolute against ``base`` (the config file's folder)."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path) and not value.is_absolute():
                changes[f.name] = base / value
        return dataclasses.replace(self, **changes)


def register_settings(settings: Any) -> RegisterSettings:
    """``settings.register`` when Settings has the section, else the defaults."""
    found = getattr(settings, "register", None)
    if isinstance(found, RegisterSettings):
        return found.resolved(settings.base_dir)
    return RegisterSettings().resolved(settings.base_dir)
