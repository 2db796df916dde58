"""A row of the register table read back as an :class:`~gateway.register.record.Entry`."""

from __future__ import annotations

import json
from typing import Any

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt
from gateway.register.codec import EntryPurged, open_entry
from gateway.register.record import Entry


def open_row(keyring: Keyring, row: Any) -> Entry:
    """A row of the register table, its sealed data opened: empty data once purged, and
    ``unreadable`` (never guessed) when the data fails its integrity check."""
    data: dict[str, Any] = {}
    purged = unreadable = False
    try:
        data = json.loads(open_entry(keyring, row["seq"], row["sealed"], row["entry_key"]))
    except EntryPurged:
        purged = True
    except (SpoolCorrupt, ValueError):
        unreadable = True
    return Entry(
        seq=row["seq"],
        at=row["at_us"] / 1e6,
        kind=row["kind"],
        ref=row["ref"],
        queue_id=row["queue_id"],
        size=row["size"],
        sha256=row["sha256"],
        public=json.loads(row["public"] or "{}"),
        data=data,
        purged=purged,
        unreadable=unreadable,
    )
