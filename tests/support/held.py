"""Shared by the held-message tests: send a message the approval policy holds, pick out
what arrived upstream for one address, and find a message's register record."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.register.ledger import Register
from gateway.register.view import Record
from support.harness import RunningGateway, message
from support.upstream import Arrived


def queue_id(reply: str) -> str:
    """The ID in "250 2.0.0 Queued as ID[, held for approval...]"."""
    return reply.split("Queued as ")[1].split(",")[0].split()[0]


async def send_held(
    gw: RunningGateway, login: str, rcpts: Sequence[str], subject: str, attach: str = ""
) -> str:
    """Send as ``login``; assert the reply says held; return the queue ID."""
    msg = message(login, rcpts, subject=subject)
    if attach:
        msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=attach)
    errors, reply = await gw.send(login, rcpts, msg)
    assert errors == {} and "held for approval" in reply, reply
    return queue_id(reply)


def arrived_for(arrived: list[Arrived], address: str) -> list[Arrived]:
    return [a for a in arrived if a.rcpt_tos == [address]]


def record_of(gw: RunningGateway, qid: str) -> Record:
    reg = gw.gateway.register
    assert isinstance(reg, Register)
    [found] = [r for r in reg.records() if r.entry.queue_id == qid]
    return found
