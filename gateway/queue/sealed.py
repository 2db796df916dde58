"""What a queue row keeps sealed, and how: the message, the staff login and the last error.

Each is AES-256-GCM (:class:`gateway.crypto.Keyring`, the spool key) bound to its queue ID
and to what it is, so a value copied into another row or another column does not open.
The staff login is sealed too (PRIV-1): next to a message's times it says who wrote to
whom, and the queue is never searched by it.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt
from gateway.mail.content import Content


def seal_message(
    keyring: Keyring, queue_id: str, envelope: dict[str, Any], content: Content
) -> bytearray:
    """The sealed row value, as a buffer the spool writes into the row in place."""
    head = json.dumps(envelope, separators=(",", ":")).encode()
    # Sealed in pieces: the message is not copied behind its envelope first.
    return keyring.seal_pieces([len(head).to_bytes(4, "big") + head, content], queue_id.encode())


def open_message(keyring: Keyring, queue_id: str, blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(envelope, content); SpoolCorrupt if the blob fails its check or does not parse."""
    head, content = keyring.open_framed(blob, queue_id.encode())
    try:
        envelope = json.loads(head)
        if not isinstance(envelope, dict):
            raise TypeError("the envelope is not an object")
    except (ValueError, TypeError) as exc:
        raise SpoolCorrupt(f"the sealed envelope does not parse ({type(exc).__name__})") from exc
    return envelope, content


def seal_staff(keyring: Keyring, queue_id: str, login: str) -> bytes:
    return keyring.seal(login.encode(), b"staff:" + queue_id.encode())


def open_staff(keyring: Keyring, queue_id: str, blob: bytes) -> str:
    try:
        return keyring.open(blob, b"staff:" + queue_id.encode()).decode()
    except (SpoolCorrupt, UnicodeDecodeError):
        return "(unreadable)"


def seal_note(keyring: Keyring, queue_id: str, note: str) -> bytes:
    # Upstream replies can quote recipient addresses: sealed like the message.
    return keyring.seal(note.encode(), b"note:" + queue_id.encode())


def open_note(keyring: Keyring, queue_id: str, blob: bytes | None) -> str:
    if not blob:
        return ""
    try:
        return keyring.open(blob, b"note:" + queue_id.encode()).decode()
    except SpoolCorrupt:
        return "(unreadable note)"
