"""End to end: a tagged message through a running gateway, then `register list`.

The register is the gateway's recorder, writing into the gateway's own SQLite file
inside the spool's transactions; the upstream is a real TLS SMTP server.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from support.harness import RunningGateway, message
from support.register import make_register
from support.upstream import Upstream

from gateway.cli import main
from gateway.register.ledger import Register
from gateway.register.record import Record
from gateway.store import Store

StartGateway = Callable[..., Awaitable[RunningGateway]]
STAFF = "alice@c4f.example"
CONTACT = "j.smith@cafcass.example"


async def _start(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> tuple[RunningGateway, Register]:
    folder = tmp_path / "gw"
    folder.mkdir()
    # Its own Store on the gateway's file: appends go through the engine's connection.
    reg = make_register(folder, store=Store(folder / "gateway.db"))
    gw = await start_gateway(
        upstream=upstream,
        folder=folder,
        recorder=reg,
        config={"pipeline": {"filters": ["sender", "disclosure"]}},
    )
    gw.add_staff(STAFF)
    return gw, reg


async def _settled(reg: Register, status: str) -> Record:
    for _ in range(200):
        records = await asyncio.to_thread(reg.records)
        if records and records[-1].status == status:
            return records[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no record reached {status!r}")


async def test_tagged_message_is_registered_and_relayed_without_tags(
    start_gateway: StartGateway,
    upstream: Upstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw, reg = await _start(start_gateway, upstream, tmp_path)
    msg = message(
        STAFF,
        [CONTACT],
        subject="[consent:not-sought] [reason:Court direction] [family:F-1042] Contact report",
        X_Disclosure_Nature="Supervised contact notes",
    )
    errors, reply = await gw.send(STAFF, [CONTACT], msg)
    assert errors == {}
    assert reply.startswith("2.0.0 Queued as ")
    [arrived] = await upstream.wait_for(1)
    # The client folded the long subject after the colon; only the tags were taken out.
    assert b"\r\nSubject:\r\n Contact report\r\n" in arrived.content
    for leftover in (b"consent", b"family", b"F-1042", b"Court direction", b"X-Disclosure"):
        assert leftover.lower() not in arrived.content.lower()

    record = await _settled(reg, "delivered")
    assert (record.staff, record.consent, record.reason, record.family, record.nature) == (
        STAFF,
        "not-sought",
        "Court direction",
        "F-1042",
        "Supervised contact notes",
    )
    assert [r["address"] for r in record.recipients] == [CONTACT]
    assert record.data["subject"] == "Contact report"
    # The register holds the hash of exactly the bytes the upstream received.
    assert record.entry.sha256 == hashlib.sha256(arrived.content).hexdigest()
    outcome = record.followups[0].data
    assert outcome["evidence"]["tls_version"].startswith("TLS")
    assert outcome["evidence"]["host"] == f"localhost:{upstream.port}"

    assert main(["register", "list", "--config", str(gw.config_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["Entry", "When", "Staff"]
    [row] = out[2:-1]
    for cell in ("1", STAFF, CONTACT, "not sought", "F-1042", "delivered"):
        assert cell in row.split("  ") or f" {cell} " in f" {row} "


async def test_unclear_tag_is_refused_and_registered(
    start_gateway: StartGateway, upstream: Upstream, tmp_path: Path
) -> None:
    gw, reg = await _start(start_gateway, upstream, tmp_path)
    msg = message(STAFF, [CONTACT], subject="[consent:yes] Contact report")
    client = await gw.client(STAFF)
    try:
        await client.mail(STAFF)
        await client.rcpt(CONTACT)
        response = await client.data(msg.as_bytes())
    except Exception as exc:  # aiosmtplib raises on a 5xx reply to DATA
        response = exc
    finally:
        client.close()
    assert "550" in str(getattr(response, "code", "")) or "550" in str(response)
    record = await _settled(reg, "refused")
    assert record.data["phase"] == "data"
    assert record.data["reference"] == "DISC-TAG"
    assert record.data["reply"].startswith("550 5.7.1 Disclosure detail consent not understood")
    assert upstream.arrived == []
