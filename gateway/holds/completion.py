"""The sender completes their own held message: the details it lacked, and a release if no
hold rule still applies (issue: staff help themselves).

A member of staff who forgot ``[consent:obtained]`` used to wait for a manager's decision.
In the console they can give the missing consent status, reason, family or nature; the
approval policy judges the message again with them (the caller passes that judgement in,
as this wing may not import the policy filters), and if nothing still calls for a line
manager it is released in one transaction: a ``completed`` hold step in the register with
what was given (so the entry is complete, and ``register verify`` sees a decision before
the delivery), the hold row removed, and the sealed proof of release the spool checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from gateway.events import HoldEvent
from gateway.holds.held import HeldMessage
from gateway.holds.service import HoldError, Holds
from gateway.register.fields import RegisterError, check_changes

log = structlog.get_logger("gateway.holds")

# The approval policy's judgement: a message's recipients and annotations -> the reasons
# it must wait for a line manager ([] when none).
Judge = Callable[[list[str], dict[str, Any]], list[str]]
DETAILS = ("consent", "reason", "family", "nature")


def complete(
    holds: Holds, queue_id: str, actor: str, changes: dict[str, str], judge: Judge
) -> tuple[HeldMessage, list[str]]:
    """Returns the held message and the reasons it is still held ([]: released). Nothing
    is recorded while a reason remains: the sender is told what it is."""
    given = {k: v for k, v in changes.items() if k in DETAILS and v}
    try:
        checked = check_changes(given)
    except RegisterError as exc:
        raise HoldError(str(exc)) from None
    if not checked:
        raise HoldError("give at least one detail: consent, reason, family or nature")
    with holds.store.transaction() as conn:
        held = holds.one(conn, queue_id.upper())
        if actor != held.staff:
            raise HoldError("only the sender may complete a held message's details")
        msg = holds.spool.read(held.queue_id)
        if msg is None:
            raise HoldError(f"no message {held.queue_id} is waiting for approval")
        annotations = dict(msg.annotations)
        annotations["disclosure"] = {**(annotations.get("disclosure") or {}), **checked}
        still = judge(list(msg.rcpt_tos), annotations)
        if still:
            return held, still
        holds.spool.recorder.hold(
            conn, HoldEvent(held.queue_id, holds.clock(), "completed", actor, changes=checked)
        )
        holds.table.remove(conn, held.queue_id)
        if not holds.spool.release(conn, held.queue_id, actor):
            raise HoldError(f"{held.queue_id} is no longer held")
    log.info("hold_completed", queue_id=held.queue_id, actor=actor)
    return held, []
