"""What every connection of every listener shares."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.directory.staff import StaffDirectory
from gateway.settings import Settings
from gateway.smtp.limits import ConnectionLimiter
from gateway.throttle import LoginThrottle


@dataclass
class ListenerContext:
    """Shared by every connection of every listener."""

    settings: Settings
    staff: StaffDirectory
    throttle: LoginThrottle
    limiter: ConnectionLimiter
