"""Smoke test with swaks, a real SMTP client (Debian ``swaks``; ``.ci/run`` installs it).

The installed swaks (20201014) does not verify the server certificate and has no
``--tls-verify``; what it shows is that an ordinary client can do STARTTLS + AUTH PLAIN
against the gateway, and that without AUTH it cannot relay (REL-1).
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from conftest import StartGateway
from support.harness import PASSWORD, RunningGateway

ALICE = "alice@c4f.example"
SWAKS = shutil.which("swaks")
pytestmark = pytest.mark.skipif(
    SWAKS is None, reason="swaks is not installed (.ci/run installs the Debian package)"
)


async def swaks(gw: RunningGateway, *args: str) -> tuple[int, str]:
    # Asynchronous: the gateway runs in this test's event loop.
    assert SWAKS is not None
    proc = await asyncio.create_subprocess_exec(
        SWAKS,
        *("--server", f"127.0.0.1:{gw.port}", "--tls", "--from", ALICE, "--to", "bob@c4f.example"),
        *("--header", "Subject: swaks smoke test", "--body", "SWAKS-SMOKE-BODY"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def test_swaks_auth_plain_over_starttls_delivers(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    code, transcript = await swaks(
        gw, "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORD
    )
    assert code == 0, transcript
    assert " -> STARTTLS" in transcript
    assert "<~  235 2.7.0 " in transcript  # "<~" is a reply read inside TLS
    assert "<~  250 2.0.0 Queued as " in transcript
    [delivered] = await gw.wait_maildir(1)
    assert b"SWAKS-SMOKE-BODY" in delivered
    assert b"\r\nFrom: alice@c4f.example\r\n" in delivered


async def test_swaks_without_auth_cannot_relay(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    code, transcript = await swaks(gw)
    assert code != 0
    assert "<~* 530 5.7.0 " in transcript
    assert "Queued as" not in transcript
    await asyncio.sleep(0.3)
    assert gw.maildir() == []
