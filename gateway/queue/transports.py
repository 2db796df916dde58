"""How a message leaves: the smarthost over verified TLS (:mod:`gateway.queue.smtp_transport`),
or a local Maildir folder for dev (here).

A transport returns one :class:`AttemptResult` per attempt: per recipient a reply code and
text, plus the evidence of how the message left. A failure before TLS is verified (no
connection, no STARTTLS, bad certificate) raises :class:`TempFailure`: the caller defers
the whole message. A failure after it (the line dies, a timeout) is a result too, with
the evidence. Nothing is ever sent in clear (TLS-1, TLS-2, TLS-3).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway.events import Evidence
from gateway.mail.content import Content


@dataclass(frozen=True)
class AttemptResult:
    replies: dict[str, tuple[int, str]]  # recipient -> (code, text)
    final_reply: str  # the reply to the end of data, or the reason nothing was sent
    evidence: Evidence = field(default_factory=Evidence)


def not_sent(rcpts: list[str], reason: str, evidence: Evidence | None = None) -> AttemptResult:
    """No reply that settles anything: every recipient is deferred with ``reason`` (451)."""
    return AttemptResult({r: (451, reason) for r in rcpts}, f"451 {reason}", evidence or Evidence())


class Transport(Protocol):
    async def send(
        self, mail_from: str, rcpt_tos: list[str], content: Content, *, clean: bool = False
    ) -> AttemptResult:
        """``clean``: the spool found no bare CR, bare LF or NUL in ``content`` when it
        accepted it; otherwise the line ends are looked at (and repaired) again."""
        ...

    async def close(self) -> None:
        """Let go of what is kept between messages (``serve`` stopping)."""


class MaildirTransport:
    """Dev and tests: each delivered message becomes one file in ``DIR/new`` (Maildir)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    async def send(
        self, mail_from: str, rcpt_tos: list[str], content: Content, *, clean: bool = False
    ) -> AttemptResult:
        name = f"{time.time_ns()}.{os.getpid()}.{os.urandom(4).hex()}.{socket.gethostname()}"
        tmp = self.path / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            header = f"Return-Path: <{mail_from}>\r\nDelivered-To: {', '.join(rcpt_tos)}\r\n"
            f.write(header.encode("utf-8"))
            f.write(content)  # not joined to the header first: a large message is not copied
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path / "new" / name)
        dfd = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        reply = f"delivered to maildir as {name}"
        return AttemptResult(
            {r: (250, reply) for r in rcpt_tos},
            f"250 {reply}",
            Evidence(host=f"maildir:{self.path}"),
        )

    async def close(self) -> None:
        """Nothing is kept open between messages."""
