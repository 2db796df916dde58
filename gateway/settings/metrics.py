"""The ``[metrics]`` settings section: the Prometheus endpoint of ``serve`` (off by default).

Hooked into :class:`gateway.settings.Settings` as ``metrics: MetricsSettings``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gateway.errors import ConfigError
from gateway.hostport import parse_hostport


@dataclass(frozen=True)
class MetricsSettings:
    # HOST:PORT of the plain-HTTP endpoint that Prometheus scrapes (GET /metrics); "" is off.
    # It needs no login and tells counts only, never an address, login or subject; keep it
    # on loopback (e.g. "127.0.0.1:9187") and let a local agent or a proxy forward it.
    listen: str = ""
    # Seconds between the endpoint's own `register verify` runs (the whole chain is walked).
    verify_interval: float = 900.0

    def __post_init__(self) -> None:
        if self.listen:
            parse_hostport(self.listen, "metrics.listen")
        if self.verify_interval <= 0:
            raise ConfigError("metrics.verify_interval: must be greater than zero")

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_hostport(self.listen, "metrics.listen")

    @property
    def loopback(self) -> bool:
        host = self.host_port[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
