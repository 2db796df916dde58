"""How the listener reads command lines and AUTH answers: whole CRLF lines, of bounded size.

aiosmtpd accepts a command ending in a bare LF, and when it skips an over-long line it
can stop between the line's CR and LF, so the lone LF reads as one more line. Wrapping
the session's reader turns both into exceptions the listener answers (SMUG-11, AUTH-7).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class BareLineFeed(Exception):
    """A command line ended in LF without CR (RFC 5321 2.3.8)."""


class LineTooLong(Exception):
    """A command line, or an answer in the AUTH exchange, longer than the reader's limit."""

    def __init__(self, *, auth: bool) -> None:
        super().__init__("line too long")
        self.auth = auth


def guard_lines(reader: asyncio.StreamReader, in_auth: Callable[[], bool]) -> None:
    """Make ``reader.readuntil(b"\\n")`` return only whole CRLF lines within its limit.

    ``in_auth`` says whether the line being read answers an AUTH challenge. DATA is read
    in blocks with ``read`` (:mod:`gateway.smtp.data`), which answers over-long lines
    itself (LIM-2): it is left alone.
    """
    original = reader.readuntil

    async def readuntil(separator: Any = b"\n") -> bytes:
        if separator != b"\n":
            return await original(separator)
        try:
            line = await original(separator)
        except asyncio.LimitOverrunError as exc:
            head = await reader.read(exc.consumed)
            while True:  # skip the rest of the line, LF included, a buffer at a time
                try:
                    await original(b"\n")
                    break
                except asyncio.LimitOverrunError as more:
                    await reader.read(more.consumed)
            raise LineTooLong(auth=in_auth() or head[:5].upper() == b"AUTH ") from None
        if not line.endswith(b"\r\n"):
            raise BareLineFeed()
        return line

    reader.readuntil = readuntil  # type: ignore[method-assign]
