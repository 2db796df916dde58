"""The ``[notices]`` settings section: the address the gateway's own mail comes from.

Hooked into :class:`gateway.settings.Settings` as ``notices: NoticeSettings``. The TOML key
is ``from``, a Python keyword: the field is ``from_`` and names its key in its metadata
(the loader reads ``toml_key``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.errors import ConfigError

# A plain addr-spec in ASCII: what goes between <> in MAIL FROM and in the From: field.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class NoticeSettings:
    # The From: of held, refused and expired notices, reminders and bounces (DSNs), and the
    # MAIL FROM of notices (a DSN's stays <>, RFC 3464). "" means postmaster@ the first
    # organisation domain. Microsoft 365 relays only an address the login may send as.
    from_: str = field(default="", metadata={"toml_key": "from"})

    def __post_init__(self) -> None:
        if self.from_ and not _ADDRESS.match(self.from_):
            raise ConfigError("notices.from: must be a plain address (name@domain), ASCII only")

    def sender(self, domains: tuple[str, ...]) -> str:
        """The address notices come from: ``from``, else postmaster@ the first domain."""
        return self.from_ or f"postmaster@{domains[0]}"
