"""The proof that a held message was approved (HOLD-1).

Policy, "Disclosing information": a held message leaves only once a line manager approves
it. Its queue state alone cannot show that: anyone who can write the database file can
set it to ``queued``. So the approval's transaction also writes a proof, sealed with the
spool key (AES-256-GCM) and bound to the queue ID and the SHA-256 of the message as it was
accepted, naming the approver and the time; it cannot be made, moved to another message
or kept for altered content without the key. The spool checks it each time it opens a
message that was held (the envelope sealed at acceptance says so) for delivery.
"""

from __future__ import annotations

import json

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_release (
    queue_id TEXT PRIMARY KEY REFERENCES queue(id) ON DELETE CASCADE,
    proof BLOB NOT NULL  -- sealed: {queue_id, sha256, approver, at}
);
"""


def _aad(queue_id: str) -> bytes:
    return b"release:" + queue_id.encode()


def make_proof(keyring: Keyring, queue_id: str, sha256: str, approver: str, at: float) -> bytes:
    body = {"queue_id": queue_id, "sha256": sha256, "approver": approver, "at": at}
    return keyring.seal(json.dumps(body, sort_keys=True).encode(), _aad(queue_id))


def approved(keyring: Keyring, queue_id: str, sha256: str, proof: bytes | None) -> bool:
    """Whether ``proof`` is a release of exactly this message (its ID and its bytes)."""
    if not proof:
        return False
    try:
        body = json.loads(keyring.open(proof, _aad(queue_id)))
    except (SpoolCorrupt, ValueError):
        return False
    return isinstance(body, dict) and (body.get("queue_id"), body.get("sha256")) == (
        queue_id,
        sha256,
    )
