"""Splices: edits made in a message's own buffer give what a new message would."""

from __future__ import annotations

import random

import pytest

from gateway.mail.splices import Edit, Splices

MESSAGE = b"From: a@c4f.example\r\nSubject: [tag] Report\r\n\r\n" + b"line of text\r\n" * 40


def _random_edits(rng: random.Random, size: int) -> list[Edit]:
    cuts = sorted(rng.sample(range(size + 1), rng.randint(0, 8) * 2))
    return [
        (start, end, bytes(rng.choice(b"ab\r\n") for _ in range(rng.randint(0, 30))))
        for start, end in zip(cuts[::2], cuts[1::2], strict=True)
    ]


def _spliced(content: bytes, edits: list[Edit]) -> bytes:
    """What the edits mean, one by one from the last (no Splices involved)."""
    out = content
    for start, end, data in sorted(edits, reverse=True):
        out = out[:start] + data + out[end:]
    return out


@pytest.mark.parametrize("seed", range(200))
def test_in_place_and_applied_agree_with_the_edits_made_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    edits = _random_edits(rng, len(MESSAGE))
    splices = Splices.of(edits)
    expected = _spliced(MESSAGE, edits)
    assert splices.applied(MESSAGE) == expected
    buf = bytearray(MESSAGE)
    written = splices.apply_in_place(buf)
    assert buf == expected
    # Where each edit's bytes are now.
    assert [bytes(buf[s:e]) for s, e in written] == [data for _, _, data in splices.edits]


@pytest.mark.parametrize(
    "edit",
    [
        (0, 21, b"From: b\r\n"),  # the first field shortened
        (0, 21, b""),  # the first field removed
        (0, len(MESSAGE), b""),  # everything removed
        (0, 0, b"Received: x\r\n"),  # a field added first
    ],
)
def test_edits_at_the_start_give_the_same_message(edit: Edit) -> None:
    # At offset 0 a shrink is made without moving the buffer's start (see _splice).
    buf = bytearray(MESSAGE)
    Splices.of([edit]).apply_in_place(buf)
    assert buf == _spliced(MESSAGE, [edit])


def test_overlapping_edits_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Splices.of([(0, 10, b""), (9, 12, b"")])
    with pytest.raises(ValueError, match="past the end"):
        Splices.of([(0, 5, b"")]).apply_in_place(bytearray(b"abc"))
