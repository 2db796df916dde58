"""The held-message value types, shared by the service that decides and the notices it sends
(so neither imports the other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HeldMessage:
    queue_id: str
    staff: str
    held_at: float
    expires_at: float
    needs_note: bool
    reasons: tuple[str, ...]
    managers: tuple[str, ...]  # the sender's line managers now ("" tuple: admins only)

    @property
    def admin_only(self) -> bool:
        """No line manager is configured: only an admin can release it."""
        return not self.managers


@dataclass(frozen=True)
class HeldDetails:
    """What an approver reads before deciding, decrypted from the held message itself."""

    held: HeldMessage
    mail_from: str
    recipients: list[dict[str, Any]]  # address, organisation, contact_id, display_name
    consent: str
    reason: str
    family: str
    nature: str
    safeguarding: bool
    external: bool
    subject: str
    attachments: list[str]  # file names only
    size: int
