"""``[dns] nameservers``: the gateway's own DNS lookups ask the resolvers the centre names
(here a DNS server on this machine), and a resolver that is not an address stops start-up
with ``FILE: dns.nameservers: REASON``."""

from __future__ import annotations

from pathlib import Path

import dns.resolver
import pytest
from support.dns_server import dns_server

from gateway.directory.mx_sweep import default_resolver, lookup_mx
from gateway.errors import ConfigError
from gateway.settings import load
from gateway.settings.dns import DnsSettings, nameserver


def _config(tmp_path: Path, dns: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[upstream]\nhost = "smtp.example"\n\n[dns]\n{dns}\n', encoding="utf-8")
    return path


def test_mx_lookups_ask_the_configured_nameserver(tmp_path: Path) -> None:
    zones = {"cafcass.example": ["20 b.mx.cafcass.example.", "10 a.mx.cafcass.example."]}
    with dns_server(zones) as server:
        settings = load(_config(tmp_path, f'nameservers = ["{server.nameserver}"]'))
        resolver = default_resolver(settings.dns)
        assert lookup_mx(resolver, "cafcass.example") == (
            "a.mx.cafcass.example",
            "b.mx.cafcass.example",
        )
        assert lookup_mx(resolver, "lapsed.example") == ()  # NXDOMAIN: takes no mail
    assert server.asked == [("cafcass.example", "MX"), ("lapsed.example", "MX")]


def test_no_nameservers_means_the_system_resolver() -> None:
    assert DnsSettings().nameservers == ()
    assert DnsSettings().servers == ()
    # What default_resolver makes of it: /etc/resolv.conf's resolvers, as dnspython reads them.
    resolver = default_resolver(DnsSettings())
    assert resolver.nameservers == dns.resolver.Resolver().nameservers
    assert resolver.lifetime == 10.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_a_nameserver_is_an_address_with_an_optional_port(
    text: str, expected: tuple[str, int]
) -> None:
    assert nameserver(text) == expected


@pytest.mark.parametrize(
    "bad", ["dns.centre.example", "127.0.0.1:0", "127.0.0.1:99999", "[::1", "[::1]x", ""]
)
def test_a_nameserver_that_is_no_address_stops_start_up(tmp_path: Path, bad: str) -> None:
    path = _config(tmp_path, f'nameservers = ["{bad}"]')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == (
        f"{path}: dns.nameservers: {bad!r} is not an IP address or IP:PORT "
        '(a resolver is named by its address, e.g. "192.0.2.53" or "127.0.0.1:5353")'
    )


def test_a_timeout_of_zero_stops_start_up(tmp_path: Path) -> None:
    path = _config(tmp_path, "timeout = 0")
    with pytest.raises(
        ConfigError, match=r"gateway\.toml: dns\.timeout: must be greater than zero$"
    ):
        load(path)
