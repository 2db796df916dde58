"""STARTTLS injection and stripping, AUTH before TLS (reliability-tests.md §2): INJ-1..6."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import warnings

import pytest
from conftest import StartGateway
from support.harness import PASSWORD
from support.pki import Issued, TestCA
from support.rawsmtp import RawSMTP, authenticated

ALICE = "alice@c4f.example"


async def _greeted(port: int) -> RawSMTP:
    c = await RawSMTP.connect(port)
    assert (await c.reply()).startswith("220")
    return c


@pytest.mark.parametrize(
    "tail",
    [
        b"RSET\r\n",
        b"AUTH PLAIN AGFsaWNlQGM0Zi5leGFtcGxlAHg=\r\n",
        b"MAIL FROM:<alice@c4f.example>\r\n",
    ],
    ids=["rset", "auth", "mail"],
)
async def test_inj_1_commands_pipelined_after_starttls_are_discarded(
    start_gateway: StartGateway, tail: bytes
) -> None:
    gw = await start_gateway()
    c = await _greeted(gw.port)
    await c.cmd("EHLO client.test")
    await c.send(b"STARTTLS\r\n" + tail)  # one write: CVE-2011-0411's shape
    assert (await c.reply()).startswith("220")
    await c.starttls(gw.client_tls())
    assert await c.silent(0.3)  # nothing answers the injected command
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    assert await c.silent(0.3)
    await c.close()


async def test_inj_2_nothing_but_starttls_before_tls(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _greeted(gw.port)
    ehlo = await c.cmd("EHLO client.test")
    assert "STARTTLS" in ehlo
    assert "AUTH" not in ehlo
    for command in (
        "AUTH PLAIN AGFsaWNlAHg=",
        f"MAIL FROM:<{ALICE}>",
        "RCPT TO:<b@c4f.example>",
        "DATA",
    ):
        assert (await c.cmd(command)).startswith("530 5.7.0"), command
    await c.close()


async def test_inj_2_plaintext_on_implicit_tls_port_gets_nothing_in_clear(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.implicit_port)
    writer.write(b"EHLO client.test\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(4096), 5)
    # Either a TLS alert record (0x15) or nothing; never an SMTP greeting or reply in clear.
    assert b"220" not in data and b"250" not in data
    assert data == b"" or data[:1] == b"\x15"
    writer.close()


async def test_inj_3_state_resets_after_tls(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _greeted(gw.port)
    await c.cmd("EHLO client.test")
    await c.cmd("STARTTLS")
    await c.starttls(gw.client_tls())
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("503")
    ehlo = await c.cmd("EHLO client.test")
    assert "STARTTLS" not in ehlo
    assert "AUTH LOGIN PLAIN" in ehlo
    await c.close()


async def test_inj_4_second_starttls_is_refused_and_session_continues(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    assert await c.cmd("STARTTLS") == "554 5.5.1 TLS already active"
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    assert (await c.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    await c.close()


async def test_inj_4_starttls_on_implicit_listener_is_refused(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    c = await RawSMTP.connect(gw.implicit_port, tls=gw.client_tls())
    assert (await c.reply()).startswith("220")
    await c.cmd("EHLO client.test")
    assert await c.cmd("STARTTLS") == "554 5.5.1 TLS already active"
    assert await c.cmd("NOOP") == "250 2.0.0 OK"
    await c.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_inj_5_silent_starttls_sessions_are_closed_and_fds_return(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={
            "limits": {
                # Long enough that none of the 200 sessions, sharing this test's event loop
                # on a loaded machine, is closed before it has sent STARTTLS.
                "idle_timeout": 2.0,
                "max_connections": 300,
                "max_connections_per_client": 300,
                "max_connections_per_network": 300,
            }
        }
    )
    baseline = _open_fds()

    async def silent_starttls() -> bool:
        c = await _greeted(gw.port)
        await c.cmd("EHLO client.test")
        await c.cmd("STARTTLS")  # then never start the handshake
        closed = await c.closed(10)
        await c.close()
        return closed

    results = await asyncio.gather(*(silent_starttls() for _ in range(200)))
    assert all(results)
    for _ in range(50):
        if _open_fds() <= baseline:
            break
        await asyncio.sleep(0.1)
    assert _open_fds() <= baseline
    assert gw.gateway.listener_ctx.limiter.total == 0


def _old_tls_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions, on purpose
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        return tls.version() or ""


def _permissive_server(cert: Issued, version: ssl.TLSVersion) -> tuple[socket.socket, int]:
    """A control server that does speak ``version``: proves the client can offer it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
    ctx.load_cert_chain(cert.cert, cert.key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True):
            pass

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"]
)
async def test_inj_6_old_tls_versions_are_refused(
    start_gateway: StartGateway, ca: TestCA, version: ssl.TLSVersion
) -> None:
    gw = await start_gateway()
    client = _old_tls_client(version)
    listener, port = _permissive_server(ca.issue("localhost"), version)
    with listener:
        try:
            await asyncio.to_thread(_handshake, port, client)
        except (ssl.SSLError, OSError) as exc:
            pytest.skip(f"this machine's OpenSSL cannot speak {version.name} at all: {exc}")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(_handshake, gw.implicit_port, client)
