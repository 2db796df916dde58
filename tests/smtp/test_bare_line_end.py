"""The bare CR / bare LF / NUL check (issue 16): counted at C speed, the same answers as the
look-around regex it replaced, on the SMUG-* inputs and on random bytes."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from test_smuggling import SMUGGLED, VARIANTS

from gateway.mail.transfer import common_prefix, common_suffix
from gateway.mail.wire import edit_is_clean, has_bare_line_end_or_nul

# The check as it was: kept here as the reference.
_REGEX = re.compile(rb"\r(?!\n)|(?<!\r)\n|\x00")


def reference(data: bytes) -> bool:
    return _REGEX.search(data) is not None


HEAD = b"From: alice@c4f.example\r\nSubject: t\r\n\r\nbody"
SMUG_INPUTS = [HEAD + v + SMUGGLED for v in VARIANTS] + [
    HEAD + b"\r\n",
    b"",
    b"\r\n",
    b"\r",
    b"\n",
    b"\x00",
    b"\r\r\n",
    b"\r\n\n",
    b"\n\r",
    b"a\r\nb\r\n.\r\n",
    b"From: alice@c4f.example\r\nSubject: a\rb\r\n\r\nbody\r\n",
    b"From: alice@c4f.example\nSubject: a\r\n\r\nbody\r\n",
    b"From: alice@c4f.example\r\n\r\nline one\nline two\r\n",
    b"From: alice@c4f.example\r\n\r\nends with a bare CR\r",
]


def test_smug_inputs_get_the_regex_answers() -> None:
    answers = [has_bare_line_end_or_nul(d) for d in SMUG_INPUTS]
    assert answers == [reference(d) for d in SMUG_INPUTS]
    # Every smuggling variant is refused, and a clean message is not.
    assert answers[: len(VARIANTS)] == [True] * len(VARIANTS)
    assert answers[len(VARIANTS)] is False


@given(st.binary(max_size=200))
def test_random_bytes_get_the_regex_answer(data: bytes) -> None:
    assert has_bare_line_end_or_nul(data) is reference(data)


# Random bytes rarely hold the interesting characters: draw mostly from them.
_PIECES = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b"a", b".", b" "]), max_size=40)


@given(_PIECES)
def test_line_end_heavy_bytes_get_the_regex_answer(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert has_bare_line_end_or_nul(data) is reference(data)


CLEAN_PIECES = st.sampled_from([b"a", b"b.", b"\r\n", b"\r\n\r\n", b" \t"])
ANY_PIECES = st.sampled_from([b"a", b"\r\n", b"\r", b"\n", b"\x00", b"\n\r", b"\r\r\n"])


@settings(max_examples=3000)
@given(
    before=st.lists(CLEAN_PIECES, max_size=30),
    cut=st.tuples(st.integers(0, 80), st.integers(0, 80)),
    inserted=st.lists(ANY_PIECES, max_size=6),
)
def test_an_edit_is_judged_as_the_whole_would_be(
    before: list[bytes], cut: tuple[int, int], inserted: list[bytes]
) -> None:
    """MIME-7 per filter: reading only where a filter's output differs from its clean input
    gives the answer of reading the whole output, wherever the edit falls (mid-CRLF too)."""
    old = b"".join(before)
    assert not reference(old)
    start, stop = sorted(min(c, len(old)) for c in cut)
    new = old[:start] + b"".join(inserted) + old[stop:]
    assert edit_is_clean(old, new) is not reference(new)


@given(
    a=st.binary(max_size=40),
    b=st.binary(max_size=40),
    shared=st.binary(max_size=200),
    limit=st.integers(0, 300),
    chunk=st.integers(1, 9),
)
def test_common_prefix_and_suffix_at_every_chunk_size(
    a: bytes, b: bytes, shared: bytes, limit: int, chunk: int
) -> None:
    def longest(x: bytes, y: bytes, most: int) -> int:
        n = 0
        while n < min(len(x), len(y), most) and x[n] == y[n]:
            n += 1
        return n

    assert common_prefix(shared + a, shared + b, chunk) == longest(shared + a, shared + b, 10**9)
    got = common_suffix(a + shared, b + shared, limit, chunk)
    assert got == longest((a + shared)[::-1], (b + shared)[::-1], limit)
