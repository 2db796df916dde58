"""Every log line is one write: serve's workers share stdout (DUR-11 once read two workers'
lines run together when a line and its newline went out in two writes)."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog

from gateway.logging import configure


class Writes(io.RawIOBase):
    """A raw stream that keeps each write it is given, as the kernel would see them."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.calls.append(bytes(data))
        return len(data)


def test_each_line_goes_out_in_one_write_however_stdout_is_buffered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = Writes()
    # Unbuffered text straight onto the raw stream (as `python -u`): every write call shows.
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", write_through=True))
    try:
        configure()
        structlog.get_logger("test").info("first_event", worker=0)
        structlog.get_logger("test").info("second_event", worker=1)
    finally:
        monkeypatch.undo()
        configure("console", "warning")  # as tests/conftest.py leaves it
    assert len(raw.calls) == 2
    for call, event in zip(raw.calls, ("first_event", "second_event"), strict=True):
        assert call.endswith(b"\n") and call.count(b"\n") == 1
        assert json.loads(call)["event"] == event
