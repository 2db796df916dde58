"""Filters that read only header fields take them without copying the body:
``header_fields`` and ``body_start`` agree with ``split_message`` on every layout."""

from __future__ import annotations

import pytest

from gateway.mail.headers import body_start, header_fields, split_message

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


@pytest.mark.parametrize("content", LAYOUTS)
def test_a_message_read_in_its_received_buffer_splits_the_same(content: bytes) -> None:
    fields, body = split_message(bytearray(content))
    assert (fields, body) == split_message(content)
    assert all(type(f.raw) is bytes for f in fields)  # kept pieces are bytes
    assert type(body) is bytes


def test_each_reader_gets_its_own_list_of_the_same_fields() -> None:
    """The fields of a header section are split once and shared by every filter that
    reads them; one filter changing its list changes no other's."""
    content = LAYOUTS[0]
    first, second = header_fields(content), header_fields(content)
    assert first == second and first is not second
    assert all(a is b for a, b in zip(first, second, strict=True))  # split once
    first.pop()
    assert len(header_fields(content)) == 2
    assert [f.key for f in second] == ["subject", "from"]


def test_a_large_header_section_is_split_every_time() -> None:
    big = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 200) for i in range(400)) + b"\r\nbody\r\n"
    assert len(big) > 64 * 1024
    first, second = header_fields(big), header_fields(big)
    assert first == second and len(first) == 400
    assert first[0] is not second[0]  # not kept: a header this large is not cached
