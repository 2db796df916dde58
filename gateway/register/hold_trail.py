"""REG-10: in the register, a held message is delivered only after an approval entry.

Policy, "Disclosing information": a message held for a line manager leaves only once they
approve it. The spool enforces that with a sealed proof of approval; this is the check
after the fact, on the MAC-chained entries, so it needs no key but the MAC key: each hold
step writes its action in the entry's plain ``public`` part (``{"hold": "approved"}``),
which the MAC covers, so nobody without the MAC key can add, remove or change one.

Walked in register order: an ``outcome`` entry (a delivery attempt) for a queue ID whose
newest hold step is ``held`` (never decided) or a refusal, withdrawal or expiry is named.
"""

from __future__ import annotations

import json

from gateway.register.codec import EntryFields

PUBLIC_KEY = "hold"  # the key of a hold step's action in the entry's public part
_NOT_SENT = {"refused", "withdrawn", "expired"}


def public_step(action: str) -> dict[str, str]:
    """What :meth:`gateway.register.ledger.Register.hold` writes in the clear."""
    return {PUBLIC_KEY: action}


class HoldTrail:
    def __init__(self) -> None:
        self.last_step: dict[str, tuple[str, int]] = {}  # queue ID -> (action, seq)
        self.unrecorded = 0  # hold entries written before steps were kept in the clear

    def row(self, f: EntryFields) -> str | None:
        """What is wrong with entry ``f`` in its message's hold trail, or None."""
        if f.kind == "hold":
            action = _action(f.public)
            if action is None:
                self.unrecorded += 1
            else:
                self.last_step[f.queue_id] = (action, f.seq)
            return None
        if f.kind != "outcome" or f.queue_id not in self.last_step:
            return None
        action, seq = self.last_step[f.queue_id]
        if action == "held":
            return (
                f"entry {f.seq} records a delivery attempt of {f.queue_id}, which was held "
                f"(entry {seq}) and never approved"
            )
        if action in _NOT_SENT:
            return (
                f"entry {f.seq} records a delivery attempt of {f.queue_id}, which was "
                f"{action} (entry {seq})"
            )
        return None

    def note(self) -> str | None:
        if not self.unrecorded:
            return None
        return (
            f"{self.unrecorded} hold entries predate hold steps kept in the clear: deliveries "
            "after them are not checked against an approval"
        )


def _action(public: str) -> str | None:
    try:
        found = json.loads(public).get(PUBLIC_KEY)
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
