"""SMTP DATA read in blocks, not line by line.

aiosmtpd reads DATA one line at a time (``readuntil(b"\\r\\n")`` and a few Python
statements per line): at 1 MB that was nearly half of the event loop's time. Here the
bytes after ``354`` are taken as they arrive, up to 256 KiB at a time, and each block is
handled with a few passes at C speed (``find``, ``count``, ``replace``):

- the end of data is ``CRLF.CRLF`` (RFC 5321 4.1.1.4), that is a line ``.`` after a CRLF,
  found wherever the chunks split it; nothing else ends DATA (SMUG-1..10): a bare CR or
  LF never starts a line;
- a line's leading dot is removed (RFC 5321 4.5.2);
- the size limit is checked as lines arrive: once over it, nothing more is kept and the
  rest is read and dropped up to the end of data (``552``, LIM-1); a line over
  ``line_limit`` octets with its CRLF (aiosmtpd's 1,001) is ``500`` (LIM-2), whichever
  comes first, as aiosmtpd answered;
- bare CR, bare LF and NUL are counted per block (:mod:`gateway.mail.wire`); the handler
  refuses such a message (SMUG-11) without reading it again;
- the bytes that follow the end of data (a pipelined next command, SMUG-14) go back to
  the session's reader.

:class:`DataBlocks` does the work on bytes (no I/O, so tests feed it every split);
:func:`read_data` feeds it from the session's reader.
"""

from __future__ import annotations

import asyncio
import enum

from aiosmtpd.smtp import Envelope

from gateway.mail.wire import has_bare_line_end_or_nul

CHUNK = 256 * 1024
_END = b"\r\n.\r\n"
_KEEP = len(_END) - 1  # enough of a dropped long line to find an end of data it starts


class GatewayEnvelope(Envelope):
    """The library's envelope, the message as received (in place of the library's
    ``content``: the buffer the filters edit) and whether DATA held a bare CR, a bare LF
    or a NUL."""

    def __init__(self) -> None:
        super().__init__()
        self.received: bytearray | None = None
        self.unclean = False


class DataState(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "too long"  # a line over the line limit: 500
    TOO_MUCH = "too much"  # over the size limit: 552


class DataBlocks:
    """Fed the bytes after ``354`` in any pieces; finds the end of data.

    ``size`` counts the octets received as sent (dot-stuffed, without the final ``.``
    line), as aiosmtpd counted them against the size limit.
    """

    def __init__(self, *, size_limit: int | None, line_limit: int) -> None:
        self.size_limit = size_limit
        self.line_limit = line_limit
        self.state = DataState.NOMINAL
        self.size = 0
        self.unclean = False  # a bare CR, a bare LF or a NUL was received
        self.rest = b""  # what followed the end of data
        self.done = False
        # The message grows in one buffer (realloc, no copy); content() hands it over
        # without another copy, where a list of blocks joined would be the message twice.
        # A bytearray: the filters' edits are then made in it (gateway.mail.splices).
        self._kept = bytearray()
        # Received, not yet taken: the start of a line not yet ended (at most line_limit
        # octets), or, once a line is too long, its last few octets.
        self._pending = b""
        self._at_line_start = True

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; True once the end of data is in (see ``rest``)."""
        buf = self._pending + chunk if self._pending else chunk
        if self._at_line_start and buf.startswith(b".\r\n"):
            end = 0
        else:
            # A dot first (memchr): a block of base64 holds none, and then no end either.
            found = buf.find(_END) if b"." in buf else -1
            end = found + 2 if found >= 0 else -1
        if end >= 0:
            self._take(buf[:end])
            self.rest = buf[end + 3 :]
            self._pending = b""
            self.done = True
            return True
        last = buf.rfind(b"\r\n")
        if last >= 0:
            self._take(buf[: last + 2])
            self._pending = buf[last + 2 :]
            self._at_line_start = True
        else:
            self._pending = buf
        if len(self._pending) > self.line_limit:
            self._stop(DataState.TOO_LONG)
            self._pending = self._pending[-_KEEP:]
            self._at_line_start = False
        return False

    def content(self) -> bytearray:
        """The message, dot-unstuffed (once ``done`` in state NOMINAL), handed over."""
        content, self._kept = self._kept, bytearray()
        return content

    def _take(self, lines: bytes) -> None:
        """Whole lines, each ending in CRLF, the first at the start of a line."""
        if not lines:
            return
        before = self.size
        self.size += len(lines)
        if self.state is not DataState.NOMINAL:
            return
        unclean = has_bare_line_end_or_nul(lines)
        self.unclean = self.unclean or unclean
        long_at = self._long_line(lines, unclean)
        over_at = -1
        if self.size_limit and self.size > self.size_limit:
            over_at = self.size_limit - before  # where the first octet over the limit is
        if long_at >= 0 and (over_at < 0 or long_at <= over_at):
            self._stop(DataState.TOO_LONG)  # aiosmtpd saw the long line before counting it
            return
        if over_at >= 0:
            self._stop(DataState.TOO_MUCH)
            return
        if lines[:1] == b".":
            lines = lines[1:]
        if b"." in lines and b"\r\n." in lines:
            lines = lines.replace(b"\r\n.", b"\r\n")
        self._kept += lines

    def _long_line(self, lines: bytes, unclean: bool) -> int:
        """Where the first line longer than ``line_limit`` with its CRLF starts; -1: none."""
        if len(lines) <= self.line_limit:
            return -1
        if not unclean:
            return _first_long_line(lines, self.line_limit)
        at = 0
        for line in lines.split(b"\r\n"):  # lines end at CRLF only, as aiosmtpd split them
            if len(line) + 2 > self.line_limit:
                return at
            at += len(line) + 2
        return -1

    def _stop(self, state: DataState) -> None:
        if self.state is DataState.NOMINAL:
            self.state = state
            self._kept = bytearray()  # nothing more is kept


def _first_long_line(lines: bytes, limit: int) -> int:
    """Where the first line over ``limit`` octets with its CRLF starts in ``lines`` (clean:
    every LF ends a line); -1: none.

    Such a line is a run of ``limit`` octets or more without LF, and any such run holds a
    whole window ``[k * step, (k + 1) * step)`` with ``step = limit // 2``: one ``find``
    per window (it stops at the window's first LF) instead of a regex over every octet.
    """
    step = max(limit // 2, 1)
    window = 0
    while window < len(lines):
        if lines.find(b"\n", window, window + step) >= 0:
            window += step
            continue
        start = lines.rfind(b"\n", 0, window) + 1
        end = lines.find(b"\n", window)
        if end < 0:
            end = len(lines)
        if end - start >= limit:  # the line and its CR: with the LF, over the limit
            return start
        window = end - end % step + step  # the next window after this line's end
    return -1


async def read_data(
    reader: asyncio.StreamReader, *, size_limit: int | None, line_limit: int
) -> DataBlocks | None:
    """Read DATA from ``reader`` up to its end; None if the connection ended first.

    What followed the end of data is put back at the front of the reader's buffer, where
    aiosmtpd reads the next command.
    """
    blocks = DataBlocks(size_limit=size_limit, line_limit=line_limit)
    while True:
        chunk = await reader.read(CHUNK)
        if not chunk:
            return None
        if blocks.feed(chunk):
            break
    if blocks.rest:
        # StreamReader has no public way to unread; aiosmtpd itself clears this buffer
        # after STARTTLS. What follows the end of data was received before anything in
        # the buffer now, so it goes in front.
        reader._buffer[:0] = blocks.rest  # type: ignore[attr-defined]
        blocks.rest = b""
    return blocks
