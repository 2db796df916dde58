"""Connection slots before login (reliability-tests.md §3, catalogue LIM-7, LIM-8).

Idle connections that never log in must not lock staff out: they get a short pre-login
idle timeout, one client network (/24, /64) holds only so many slots, and when every slot
is taken the longest-idle connection that has not logged in makes room for the newcomer
(Postfix, under stress, shortens its timeouts when connections run short; the gateway
reclaims the idlest slot at once). A session that has logged in is never closed for this.

Source addresses are spread over 127.0.0.0/8 (all loopback on Linux): 127.0.1.x and
127.0.2.x are other /24 networks than the 127.0.0.1 that staff connect from.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from conftest import StartGateway
from support.harness import PASSWORD, base_config, merge, write_config
from support.pki import TestCA
from support.rawsmtp import RawSMTP, authenticated
from support.upstream import Upstream

from gateway.errors import ConfigError
from gateway.settings import load
from gateway.smtp.limits import network_of

ALICE = "alice@c4f.example"
EVICTED = "421 4.7.0 "


async def _connect(port: int, local: str) -> tuple[RawSMTP, str]:
    """A connection from ``local`` and the server's first reply (220 or 421)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    c = RawSMTP(reader, writer)
    return c, await c.reply()


async def _log_in(c: RawSMTP, tls: ssl.SSLContext) -> None:
    assert (await c.cmd("EHLO client.test")).startswith("250")
    assert (await c.cmd("STARTTLS")).startswith("220")
    await c.starttls(tls)
    assert (await c.cmd("EHLO client.test")).startswith("250")
    assert (await c.login(ALICE, PASSWORD)).startswith("235")


async def test_lim7_idle_connection_before_login_is_closed_sooner(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={"limits": {"idle_timeout": 30.0, "idle_timeout_before_login": 0.3}}
    )
    gw.add_staff(ALICE)
    silent, greeting = await _connect(gw.port, "127.0.0.2")
    assert greeting.startswith("220")
    # Through STARTTLS but no login: still before login.
    encrypted, greeting = await _connect(gw.port, "127.0.0.3")
    assert (await encrypted.cmd("EHLO client.test")).startswith("250")
    assert (await encrypted.cmd("STARTTLS")).startswith("220")
    await encrypted.starttls(gw.client_tls())
    assert (await encrypted.cmd("EHLO client.test")).startswith("250")
    staff = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    assert await silent.closed(3)
    assert await encrypted.closed(3)
    # Logged in, it keeps the ordinary idle timeout (RFC 5321 4.5.3.2), from the login on.
    await asyncio.sleep(1.0)
    assert (await staff.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    await staff.close()


async def test_lim7_one_network_holds_only_its_share_of_connections(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={
            "limits": {
                "max_connections": 50,
                "max_connections_per_client": 2,
                "max_connections_per_network": 4,
            }
        }
    )
    admitted = []
    for local in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"):
        c, greeting = await _connect(gw.port, local)
        assert greeting.startswith("220"), greeting
        admitted.append(c)
    # A fifth address of the same /24 is refused, though it has no connection of its own.
    refused, greeting = await _connect(gw.port, "127.0.0.4")
    assert greeting.startswith("421 4.7.0"), greeting
    assert await refused.closed()
    # Another /24 is served, and nobody already connected was closed for it.
    other, greeting = await _connect(gw.port, "127.0.1.2")
    assert greeting.startswith("220"), greeting
    for c in [*admitted, other]:
        assert (await c.cmd("NOOP")).startswith("250")
        await c.close()


def test_lim7_networks_are_ipv4_slash_24_and_ipv6_slash_64() -> None:
    assert network_of("192.0.2.1") == network_of("192.0.2.254") == "192.0.2.0/24"
    assert network_of("192.0.3.1") != network_of("192.0.2.1")
    assert network_of("::ffff:192.0.2.7") == "192.0.2.0/24"  # a dual-stack listener's IPv4
    assert network_of("2001:db8::1") == network_of("2001:db8::ffff:1") == "2001:db8::/64"
    assert network_of("2001:db8:0:1::1") != network_of("2001:db8::1")
    assert network_of("unknown") == "unknown"


def test_lim7_network_limit_below_the_address_limit_stops_start_up(
    tmp_path: Path, ca: TestCA
) -> None:
    limits = {"max_connections_per_client": 30, "max_connections_per_network": 20}
    path = write_config(
        tmp_path / "gateway.toml", merge(base_config(tmp_path, ca, None), {"limits": limits})
    )
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: limits.max_connections_per_network: must be at least max_connections_per_client"
    )


async def test_lim8_staff_get_in_while_idle_connections_fill_every_slot(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(
        upstream=upstream,
        config={
            "limits": {
                "max_connections": 6,
                "max_connections_per_client": 3,
                "max_connections_per_network": 3,
            }
        },
    )
    gw.add_staff(ALICE)
    idle = []
    for local in ("127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.2.2", "127.0.2.3", "127.0.2.4"):
        c, greeting = await _connect(gw.port, local)
        assert greeting.startswith("220"), greeting
        idle.append(c)
    # The first one is the oldest but not the idlest: the second has been silent longest.
    assert (await idle[0].cmd("NOOP")).startswith("250")

    staff = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    evicted = await idle[1].reply()
    assert evicted.startswith(EVICTED) and "idle" in evicted, evicted
    assert await idle[1].closed()
    # The attacker keeps reconnecting from other networks: each newcomer closes another
    # idle connection, never the logged-in session.
    for local in ("127.0.3.2", "127.0.4.2", "127.0.5.2"):
        c, greeting = await _connect(gw.port, local)
        assert greeting.startswith("220"), greeting
        idle.append(c)

    assert (await staff.cmd(f"MAIL FROM:<{ALICE}>")).startswith("250")
    assert (await staff.cmd("RCPT TO:<bob@c4f.example>")).startswith("250")
    assert (await staff.cmd("DATA")).startswith("354")
    await staff.send(f"From: {ALICE}\r\nSubject: s\r\n\r\nsent under siege\r\n.\r\n".encode())
    assert (await staff.reply()).startswith("250 ")
    await staff.close()
    [arrived] = await upstream.wait_for(1)
    assert arrived.content.endswith(b"\r\n\r\nsent under siege\r\n")
    for c in idle:
        await c.close()


async def test_lim8_logged_in_sessions_are_never_evicted(start_gateway: StartGateway) -> None:
    gw = await start_gateway(
        config={
            "limits": {
                "max_connections": 3,
                "max_connections_per_client": 3,
                "max_connections_per_network": 3,
            }
        }
    )
    gw.add_staff(ALICE)
    # The logged-in sessions are the idlest; the one that has not logged in is busy.
    first = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    second = await authenticated(gw.port, gw.client_tls(), ALICE, PASSWORD)
    busy, greeting = await _connect(gw.port, "127.0.1.2")
    assert greeting.startswith("220")
    assert (await busy.cmd("NOOP")).startswith("250")

    newcomer, greeting = await _connect(gw.port, "127.0.2.2")
    assert greeting.startswith("220"), greeting
    assert (await busy.reply()).startswith(EVICTED)
    assert await busy.closed()
    await _log_in(newcomer, gw.client_tls())

    # Every slot is held by a logged-in session: the next client is refused instead.
    refused, greeting = await _connect(gw.port, "127.0.3.2")
    assert greeting.startswith("421 4.7.0"), greeting
    assert await refused.closed()
    for c in (first, second, newcomer):
        assert (await c.cmd("NOOP")).startswith("250")
        await c.close()
