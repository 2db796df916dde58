"""The submission listeners' sockets, bound once.

``serve`` binds them before it starts its worker processes (:mod:`gateway.supervisor`),
which inherit them and accept on them side by side; a single process
(:class:`gateway.server.Gateway` without a supervisor) binds them the same way. A port
that cannot be bound stops start-up with one line naming the setting.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from gateway.errors import ConfigError
from gateway.hostport import parse_hostport
from gateway.settings import Settings

KINDS = ("starttls", "implicit_tls")
BACKLOG = 100  # asyncio's default for create_server


@dataclass(frozen=True)
class Listening:
    kind: str  # "starttls" | "implicit_tls"
    text: str  # the setting's value, HOST:PORT
    sockets: tuple[socket.socket, ...]  # one per address HOST resolves to

    @property
    def host_port(self) -> tuple[str, int]:
        name = self.sockets[0].getsockname()
        return str(name[0]), int(name[1])


def bind_listeners(settings: Settings) -> list[Listening]:
    """Bind and listen on every ``[listen]`` address; close them all if one fails."""
    bound: list[Listening] = []
    try:
        for kind in KINDS:
            for text in getattr(settings.listen, kind):
                bound.append(Listening(kind, text, _bind(settings, kind, text)))
    except BaseException:
        close_all(bound)
        raise
    return bound


def close_all(listening: list[Listening]) -> None:
    for item in listening:
        for sock in item.sockets:
            sock.close()


def _bind(settings: Settings, kind: str, text: str) -> tuple[socket.socket, ...]:
    host, port = parse_hostport(text, f"listen.{kind}")
    out: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        seen: set[tuple[int, object]] = set()
        for family, kind_, proto, _name, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            sock = socket.socket(family, kind_, proto)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in out:
            sock.close()
        # One line, not a traceback: the usual cause is another gateway.
        why = exc.strerror or str(exc)
        raise ConfigError(
            f"{settings.source}: listen.{kind}: cannot listen on {text}: {why}"
            + (" (is another gateway running?)" if exc.errno == errno.EADDRINUSE else "")
        ) from None
    return tuple(out)
