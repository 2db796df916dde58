"""A message sealed in pieces (the spool: envelope, then the message, not joined first)
opens as the pieces joined, with the same format and checks as ``Keyring.seal``."""

from __future__ import annotations

import os

import pytest

from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt


@pytest.mark.parametrize("sizes", [[0], [5], [5, 0, 17], [100_000, 3], [4096, 1 << 20, 7]])
def test_pieces_open_as_one_sealed_value(sizes: list[int]) -> None:
    keyring = Keyring([("k1", os.urandom(32))])
    pieces = [os.urandom(n) for n in sizes]
    blob = bytes(keyring.seal_pieces(pieces, b"queue:A1"))
    assert keyring.open(blob, b"queue:A1") == b"".join(pieces)
    assert len(blob) == len(keyring.seal(b"".join(pieces), b"queue:A1"))


def test_a_piece_sealed_for_another_row_or_altered_does_not_open() -> None:
    keyring = Keyring([("k1", os.urandom(32))])
    blob = bytearray(keyring.seal_pieces([b"head", b"message body"], b"queue:A1"))
    with pytest.raises(SpoolCorrupt):
        keyring.open(bytes(blob), b"queue:A2")
    blob[-20] ^= 1
    with pytest.raises(SpoolCorrupt):
        keyring.open(bytes(blob), b"queue:A1")


def test_a_framed_value_opens_as_its_two_parts_only_when_it_passes_its_check() -> None:
    keyring = Keyring([("k1", os.urandom(32))])
    head, body = b'{"staff":"alice"}', os.urandom(300_000)
    framed = len(head).to_bytes(4, "big") + head + body
    blob = bytearray(keyring.seal_pieces([framed[:7], framed[7:]], b"queue:A1"))
    assert keyring.open_framed(bytes(blob), b"queue:A1") == (head, body)
    with pytest.raises(SpoolCorrupt):
        keyring.open_framed(bytes(blob), b"queue:A2")
    blob[-20] ^= 1
    with pytest.raises(SpoolCorrupt):
        keyring.open_framed(bytes(blob), b"queue:A1")
    with pytest.raises(SpoolCorrupt):
        keyring.open_framed(bytes(blob[:30]), b"queue:A1")
