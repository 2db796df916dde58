"""A filter's change to a message as edits of it, made in the message's own buffer.

A filter that changes a few places of a message (a subject tag removed, the notice
inserted) returns :class:`Splices` instead of a new message. The pipeline makes them in
the one buffer the message was received into (a ``bytearray``), so a 25 MB message is
never held twice: once as the filter's input and once as its output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.mail.content import Content

Edit = tuple[int, int, bytes]  # replace content[start:end] with the bytes


@dataclass(frozen=True)
class Splices:
    """Edits of one message, each against the message as the filter was given it."""

    edits: tuple[Edit, ...]

    @classmethod
    def of(cls, edits: Iterable[Edit]) -> Splices:
        """In order; ValueError if two overlap (a bug: the pipeline fails closed, 451)."""
        found = cls(tuple(sorted(edits, key=lambda e: (e[0], e[1]))))
        found._check(None)
        return found

    def applied(self, content: Content) -> bytes:
        """A new message with the edits made; ``content`` is left as it was."""
        self._check(len(content))
        out: list[bytes | memoryview] = []
        pos = 0
        with memoryview(content) as view:
            for start, end, data in self.edits:
                out += [view[pos:start], data]  # the unchanged stretches are views
                pos = end
            out.append(view[pos:])
            joined = b"".join(out)
            out.clear()  # the views, before the buffer they show is released
        return joined

    def apply_in_place(self, buf: bytearray) -> list[tuple[int, int]]:
        """Make the edits in ``buf`` itself; returns where in ``buf`` each edit's bytes now
        are, in order. ``buf`` must have no other view open (BufferError: it cannot be
        resized)."""
        self._check(len(buf))
        written: list[tuple[int, int]] = []
        shift = 0
        for start, end, data in self.edits:
            written.append((start + shift, start + shift + len(data)))
            shift += len(data) - (end - start)
        # From the last to the first, so each edit's offsets still hold when it is made.
        for start, end, data in reversed(self.edits):
            _splice(buf, start, end, data)
        return written

    def _check(self, size: int | None) -> None:
        pos = 0
        for start, end, _ in self.edits:
            if start < pos or end < start:
                raise ValueError("edits overlap or are out of order")
            pos = end
        if size is not None and pos > size:
            raise ValueError("an edit reaches past the end of the message")


def _splice(buf: bytearray, start: int, end: int, data: bytes) -> None:
    """``buf[start:end] = data``, never by moving the start of ``buf``: CPython shrinks a
    bytearray at offset 0 so, and its next growth then copies the whole buffer (the
    message twice, for a moment). Shrunk further on, it moves the tail down instead."""
    if start > 0 or len(data) >= end:
        buf[start:end] = data
        return
    if not data and end < len(buf):
        data, end = bytes(buf[end : end + 1]), end + 1  # the same edit, with data
    buf[: len(data)] = data  # the same size: nothing moves
    del buf[len(data) : end]
