"""The bare CR / bare LF / NUL check (issue 16): counted at C speed, the same answers as the
look-around regex it replaced, on the SMUG-* inputs and on random bytes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from test_smuggling import SMUGGLED, VARIANTS

from gateway.mail.wire import has_bare_line_end_or_nul

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
