"""The ``[dns]`` settings section: which resolvers the gateway's own DNS lookups ask.

Hooked into :class:`gateway.settings.Settings` as ``dns: DnsSettings``. Empty (the default)
means the system's resolver (``/etc/resolv.conf``). A centre whose machine may not reach
the outside world's DNS, or which must use its own resolver, names them here; every
lookup made with dnspython (the contacts' MX sweep in ``serve``, the console and
``contacts add`` / ``contacts review``) then asks only these, in order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gateway.errors import ConfigError

DNS_PORT = 53


@dataclass(frozen=True)
class DnsSettings:
    # Resolvers to ask, in order: "IP" (port 53) or "IP:PORT" ("[IPv6]:PORT" for IPv6).
    # Empty: the system's resolver.
    nameservers: tuple[str, ...] = ()
    # Seconds one lookup may take, every resolver tried included.
    timeout: float = 10.0

    def __post_init__(self) -> None:
        for text in self.nameservers:
            nameserver(text)
        if self.timeout <= 0:
            raise ConfigError("dns.timeout: must be greater than zero")

    @property
    def servers(self) -> tuple[tuple[str, int], ...]:
        """The nameservers as (IP address, port)."""
        return tuple(nameserver(text) for text in self.nameservers)


def nameserver(text: str) -> tuple[str, int]:
    """``"192.0.2.1"``, ``"192.0.2.1:5353"``, ``"2001:db8::1"`` or ``"[2001:db8::1]:5353"``
    as (address, port); a host name is refused (the resolver itself needs an address)."""
    host, port = text.strip(), DNS_PORT
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise _bad(text)
        if rest:
            port = _port(rest[1:], text)
    elif host.count(":") == 1:
        host, _, rest = host.partition(":")
        port = _port(rest, text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _bad(text) from None
    return str(address), port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _bad(whole)
    return int(text)


def _bad(text: str) -> ConfigError:
    return ConfigError(
        f"dns.nameservers: {text!r} is not an IP address or IP:PORT "
        '(a resolver is named by its address, e.g. "192.0.2.53" or "127.0.0.1:5353")'
    )
