"""Filters that read only header fields take them without copying the body:
``header_fields`` and ``body_start`` agree with ``split_message`` on every layout."""

from __future__ import annotations

import pytest

from gateway.mail.headers import body_start, header_fields, join_message, split_message

LAYOUTS = [
    b"Subject: a\r\nFrom: b@c4f.example\r\n\r\nbody\r\n",
    b"Subject: a\r\n folded\r\n\r\n\r\nbody after a blank line\r\n",
    b"\r\nno header at all\r\n",
    b"\r\nno header, and a blank line in the body\r\n\r\nmore\r\n",
    b"Subject: only a header\r\n",
    b"Subject: no final line end",
    b"",
]


@pytest.mark.parametrize("content", LAYOUTS)
def test_header_fields_and_body_start_are_split_messages(content: bytes) -> None:
    fields, body = split_message(content)
    assert header_fields(content) == fields
    assert content[body_start(content) :] == body


def test_a_body_given_in_place_is_joined_as_the_same_bytes() -> None:
    content = LAYOUTS[1]
    fields = header_fields(content)
    in_place = join_message(fields, memoryview(content)[body_start(content) :])
    assert in_place == join_message(*split_message(content))
    assert in_place == content
