"""DATA read in blocks (gateway.smtp.data): the bytes after 354 in every split.

Each case feeds :class:`DataBlocks` the same stream cut at every offset (or at random
offsets) and compares what it found with a line-by-line reading of the stream, the way
aiosmtpd read DATA: lines end at CRLF only, a line ``.`` ends the data, a leading dot is
removed, a line over the line limit is 500 and more than the size limit 552, whichever
comes first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail.wire import has_bare_line_end_or_nul
from gateway.smtp.data import DataBlocks, DataState, _first_long_line

LINE_LIMIT = 1001


@dataclass
class Read:
    state: DataState
    content: bytes  # only in state NOMINAL
    unclean: bool  # only in state NOMINAL
    rest: bytes


def line_by_line(stream: bytes, size_limit: int | None) -> Read:
    """The reference: one CRLF line at a time (the stream holds an end of data)."""
    pos, size, state, kept = 0, 0, DataState.NOMINAL, []
    while True:
        end = stream.index(b"\r\n", pos) + 2
        line, pos = stream[pos:end], end
        if line == b".\r\n":
            break
        if state is DataState.NOMINAL and len(line) > LINE_LIMIT:
            state = DataState.TOO_LONG
        size += len(line)
        if state is DataState.NOMINAL and size_limit and size > size_limit:
            state = DataState.TOO_MUCH
        kept.append(line[1:] if line.startswith(b".") else line)
    content = b"".join(kept) if state is DataState.NOMINAL else b""
    return Read(state, content, has_bare_line_end_or_nul(content), stream[pos:])


def in_blocks(pieces: list[bytes], size_limit: int | None) -> Read:
    """Feed ``pieces`` until the end of data; what it found, and everything after it."""
    blocks = DataBlocks(size_limit=size_limit, line_limit=LINE_LIMIT)
    for i, piece in enumerate(pieces):
        if blocks.feed(piece):
            rest = blocks.rest + b"".join(pieces[i + 1 :])
            nominal = blocks.state is DataState.NOMINAL
            content = blocks.content() if nominal else b""
            return Read(blocks.state, content, blocks.unclean and nominal, rest)
    raise AssertionError("the end of data was not found")


def cuts(stream: bytes, *offsets: int) -> list[bytes]:
    edges = [0, *sorted(offsets), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def assert_every_split(stream: bytes, size_limit: int | None = None) -> Read:
    expected = line_by_line(stream, size_limit)
    for at in range(len(stream) + 1):
        assert in_blocks(cuts(stream, at), size_limit) == expected, at
    return expected


NEXT = b"MAIL FROM:<alice@c4f.example>\r\n"


def test_end_of_data_split_at_every_offset() -> None:
    stream = b"From: a@c4f.example\r\n\r\nbody\r\n.\r\n" + NEXT
    read = assert_every_split(stream)
    assert read.state is DataState.NOMINAL
    assert read.content == b"From: a@c4f.example\r\n\r\nbody\r\n"
    assert read.rest == NEXT


def test_end_of_data_split_in_three_at_every_pair_of_offsets() -> None:
    stream = b"a\r\n..\r\n.\r\nNOOP\r\n"
    expected = line_by_line(stream, None)
    assert expected.content == b"a\r\n.\r\n" and expected.rest == b"NOOP\r\n"
    for a in range(len(stream) + 1):
        for b in range(a, len(stream) + 1):
            assert in_blocks(cuts(stream, a, b), None) == expected, (a, b)


def test_the_message_is_handed_over_in_the_buffer_it_grew_in() -> None:
    """A bytearray: the filters' edits are made in it (gateway.mail.splices), and taking it
    leaves nothing behind in the reader."""
    blocks = DataBlocks(size_limit=None, line_limit=LINE_LIMIT)
    assert blocks.feed(b"Subject: x\r\n\r\n" + b"y" * 900 + b"\r\n.\r\n")
    content = blocks.content()
    assert type(content) is bytearray
    assert content == b"Subject: x\r\n\r\n" + b"y" * 900 + b"\r\n"
    assert blocks.content() == b""


def test_one_byte_at_a_time() -> None:
    stream = b"x\r\n.y\r\n\r\n.\r\nQUIT\r\n"
    read = in_blocks([bytes([c]) for c in stream], None)
    assert read == line_by_line(stream, None)
    assert read.content == b"x\r\ny\r\n\r\n" and read.rest == b"QUIT\r\n"


def test_empty_message_ends_at_once() -> None:
    read = assert_every_split(b".\r\nRSET\r\n")
    assert read.content == b"" and read.rest == b"RSET\r\n"


def test_dot_stuffed_lines_at_chunk_edges() -> None:
    sent = [b"..first", b"..", b".x", b"...", b"..x", b". ", b"x.", b"", b"....", b"."]
    stream = b"".join(line + b"\r\n" for line in sent)  # the last line ends the data
    read = assert_every_split(stream + NEXT)
    assert read.content == b".first\r\n.\r\nx\r\n..\r\n.x\r\n \r\nx.\r\n\r\n...\r\n"
    assert read.rest == NEXT


@pytest.mark.parametrize(
    "variant",
    [b"\n.\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
     b"\r\n\x00.\r\n", b"\r\n.\x00\r\n"],
)  # fmt: skip
def test_no_smuggled_end_of_data_in_any_split(variant: bytes) -> None:
    """SMUG-1..10: only CRLF.CRLF ends the data, wherever the chunks are cut."""
    stream = b"Subject: t\r\n\r\nbody" + variant + b"MAIL FROM:<x@evil.example>\r\n.\r\n"
    read = assert_every_split(stream)
    assert read.state is DataState.NOMINAL and read.unclean
    assert b"MAIL FROM:<x@evil.example>" in read.content and read.rest == b""


def test_crlf_cut_between_cr_and_lf_is_clean() -> None:
    stream = b"one\r\ntwo\r\n.\r\n"
    for at in range(len(stream) + 1):
        assert in_blocks(cuts(stream, at), None).unclean is False, at


def test_size_limit_hit_mid_chunk_drops_the_rest() -> None:
    lines = b"".join(b"line %04d of the message\r\n" % i for i in range(40))
    stream = lines + b"...\r\n.\r\n" + NEXT
    limit = len(lines) // 2 + 3  # inside a line, in the middle of one chunk
    read = assert_every_split(stream, limit)
    assert read.state is DataState.TOO_MUCH and read.rest == NEXT
    # One big chunk, the limit crossed in its middle: nothing of it is kept.
    blocks = DataBlocks(size_limit=limit, line_limit=LINE_LIMIT)
    assert blocks.feed(stream)
    assert blocks.state is DataState.TOO_MUCH and blocks.content() == b""
    assert blocks.size == len(lines) + 5


def test_size_limit_is_counted_as_sent() -> None:
    """The dot-stuffed octets count, the final ``.`` line does not (as aiosmtpd)."""
    stream = b"..\r\n.\r\n"
    assert in_blocks([stream], 4).state is DataState.NOMINAL
    assert in_blocks([stream], 3).state is DataState.TOO_MUCH


def test_long_line_is_too_long_in_any_split() -> None:
    stream = b"ok\r\n" + b"z" * 1200 + b"\r\nmore\r\n.\r\n" + NEXT
    read = assert_every_split(stream)
    assert read.state is DataState.TOO_LONG and read.rest == NEXT


def test_line_limit_is_inclusive_of_crlf() -> None:
    fits = b"x" * (LINE_LIMIT - 2) + b"\r\n"
    over = b"x" * (LINE_LIMIT - 1) + b"\r\n"
    for first in (b"", b"a\r\n"):
        assert in_blocks([first + fits + b".\r\n"], None).state is DataState.NOMINAL
        assert in_blocks([first + over + b".\r\n"], None).state is DataState.TOO_LONG


def test_whichever_comes_first_long_line_or_size() -> None:
    long_line = b"y" * 1100 + b"\r\n"
    small = b"s" * 50 + b"\r\n"
    assert in_blocks([long_line + small * 40 + b".\r\n"], 500).state is DataState.TOO_LONG
    assert in_blocks([small * 40 + long_line + b".\r\n"], 500).state is DataState.TOO_MUCH
    # The long line is the one that crosses the limit: aiosmtpd saw it was long first.
    assert in_blocks([small * 2 + long_line + b".\r\n"], 500).state is DataState.TOO_LONG


def test_long_line_with_bare_lf_is_still_one_line() -> None:
    """Lines end at CRLF only: a bare LF inside a long line does not shorten it."""
    line = b"a" * 600 + b"\n" + b"b" * 600 + b"\r\n"
    assert in_blocks([line + b".\r\n"], None).state is DataState.TOO_LONG


def test_a_line_that_never_ends_keeps_little() -> None:
    blocks = DataBlocks(size_limit=None, line_limit=LINE_LIMIT)
    for _ in range(100):
        assert not blocks.feed(b"w" * 65536)
    assert blocks.state is DataState.TOO_LONG
    assert len(blocks._pending) < 8
    assert blocks.feed(b"\r\n.\r\n") and blocks.rest == b""


_ALPHABET = st.sampled_from([b"a", b"b", b".", b"\r", b"\n", b"\r\n", b"\x00", b".\r\n"])


@settings(max_examples=400, deadline=None)
@given(
    body=st.lists(_ALPHABET, max_size=80).map(b"".join),
    tail=st.lists(_ALPHABET, max_size=10).map(b"".join),
    offsets=st.lists(st.integers(min_value=0, max_value=120), max_size=6),
    size_limit=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
)
def test_same_as_line_by_line(
    body: bytes, tail: bytes, offsets: list[int], size_limit: int | None
) -> None:
    stream = body + b"\r\n.\r\n" + tail
    pieces = cuts(stream, *(min(o, len(stream)) for o in offsets))
    assert in_blocks(pieces, size_limit) == line_by_line(stream, size_limit)


@settings(max_examples=400, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=40),
    lengths=st.lists(st.integers(min_value=0, max_value=120), max_size=30),
)
def test_the_first_long_line_is_found_wherever_it_falls(limit: int, lengths: list[int]) -> None:
    """The window search finds the line a line-by-line reading finds, at every limit."""
    lines = b"".join(b"x" * n + b"\r\n" for n in lengths)
    expected, at = -1, 0
    for n in lengths:
        if n + 2 > limit:
            expected = at
            break
        at += n + 2
    assert _first_long_line(lines, limit) == expected
