"""``HOST:PORT`` parsing shared by every listener setting."""

from __future__ import annotations

from gateway.errors import ConfigError


def parse_hostport(text: str, where: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{where}: {text!r} is not HOST:PORT")
    return host, int(port)
