"""Shared builders for the delivery tests: a recorder that keeps what the engine reports,
a gateway relaying to a scripted smarthost, and a way to wait for an outcome.

Imported by ``test_delivery*`` and ``test_upstream_tls``; holds no tests of its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from conftest import StartGateway
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.events import Accepted, HoldEvent, Outcome, RefusedEvent
from support.fakesmtp import FakeSmarthost, Script
from support.harness import RunningGateway, merge, message
from support.pki import Issued, TestCA

ALICE = "alice@c4f.example"
BOB = "bob@partner.test"
CAROL = "carol@partner.test"
SMARTHOST = "smarthost.test"  # the name the certificates carry; we connect to 127.0.0.1


class EventLog:
    """A real :class:`gateway.events.Recorder` that keeps the events in lists."""

    def __init__(self) -> None:
        self.accepts: list[Accepted] = []
        self.refusals: list[RefusedEvent] = []
        self.outcomes: list[Outcome] = []
        self.holds: list[HoldEvent] = []

    def summarise(self, content: bytes) -> None:
        return None

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        self.accepts.append(event)

    def refused(self, conn: sqlite3.Connection, event: RefusedEvent) -> None:
        self.refusals.append(event)

    def outcome(self, conn: sqlite3.Connection, event: Outcome) -> None:
        self.outcomes.append(event)

    def hold(self, conn: sqlite3.Connection, event: HoldEvent) -> None:
        self.holds.append(event)

    def of(self, queue_id: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.queue_id == queue_id]

    def statuses(self, queue_id: str) -> list[tuple[int, str]]:
        return [(o.attempt, o.status) for o in self.of(queue_id)]


async def until(what: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until ``what()`` is true (polling: the worker runs in the same loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not what():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def fingerprint(issued: Issued) -> str:
    """SHA-256 of the leaf certificate (the first in the chain file), as hex."""
    leaf = x509.load_pem_x509_certificates(issued.cert.read_bytes())[0]
    return leaf.fingerprint(hashes.SHA256()).hex()


async def smarthost(
    ca: TestCA, script: Script | None = None, *, cert: Issued | None = None
) -> FakeSmarthost:
    issued = cert or ca.issue(SMARTHOST)
    return await FakeSmarthost(FakeSmarthost.context(issued.cert, issued.key), script).start()


async def relay_gateway(
    start_gateway: StartGateway,
    fake: FakeSmarthost,
    ca: TestCA,
    log: EventLog,
    *,
    upstream: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> RunningGateway:
    """A gateway (staff ALICE) relaying to ``fake`` over TLS verified for SMARTHOST."""
    cfg: dict[str, Any] = {
        "delivery": {"transport": "smtp"},
        "upstream": {
            "host": "127.0.0.1",
            "port": fake.port,
            "tls": "implicit" if fake.script.implicit else "starttls",
            "tls_name": SMARTHOST,
            "ca_file": str(ca.ca_file),
            "timeout": 5.0,
            **(upstream or {}),
        },
    }
    gw = await start_gateway(config=merge(cfg, config or {}), recorder=log)
    gw.add_staff(ALICE)
    return gw


async def submit(gw: RunningGateway, rcpts: list[str], msg: EmailMessage | None = None) -> str:
    """Submit as ALICE; returns the queue ID."""
    errors, reply = await gw.send(ALICE, rcpts, msg or message(ALICE, rcpts))
    assert errors == {}
    assert reply.startswith("2.0.0 Queued as ")
    return reply.split()[-1]


def smarthost_ca(tmp_path: Path) -> TestCA:
    """A CA of the smarthost's own, so each test's certificates are its own files."""
    return TestCA(tmp_path / "smarthost-pki", "smarthost test CA")
