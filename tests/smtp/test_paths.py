"""MAIL FROM / RCPT TO paths: the fast reading of plain paths answers as aiosmtpd does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP

from gateway.smtp.paths import plain_path

PATHS = [
    "<a@b>",
    "<a@b> SIZE=10",
    "<a@b>  SIZE=10 BODY=8BITMIME",
    "<a@b>\tSIZE=10",
    "<a@b> SIZE=10 ",
    "<A.b+c_d@Ex-ample.ORG>",
    "<o'brien@example.org>",
    "<staff.member@mail.centre.example.org> SMTPUTF8",
]
NOT_PLAIN = [
    "<a@b>x",
    "<a..b@c>",
    "<.a@c>",
    "<a.@c>",
    "<a@b.>",
    "<a@.b>",
    "<@x:a@b>",
    '<"q r"@b>',
    "<a@[192.0.2.1]>",
    "<>",
    " <a@b>",
    "a@b",
    "<a@b",
    "<a@b>(comment)",
    "<é@example.org>",
    "<a@exämple.org>",
    "<a b@c>",
    "<a@b@c>",
]


@pytest.fixture(scope="module")
def library() -> Iterator[SMTP]:
    loop = asyncio.new_event_loop()
    yield SMTP(object(), loop=loop)
    loop.close()


@pytest.mark.parametrize("arg", PATHS)
def test_a_plain_path_reads_as_the_library_reads_it(library: SMTP, arg: str) -> None:
    got = plain_path(arg)
    assert got is not None
    assert got == SMTP._getaddr(library, arg)


@pytest.mark.parametrize("arg", NOT_PLAIN)
def test_anything_else_is_left_to_the_library(arg: str) -> None:
    assert plain_path(arg) is None


def test_a_local_part_over_the_limit_is_left_to_the_library(library: SMTP) -> None:
    assert plain_path("<abcd@b>", local_part_limit=4) == ("abcd@b", "")
    assert plain_path("<abcde@b>", local_part_limit=4) is None
    library.local_part_limit = 4
    try:
        assert SMTP._getaddr(library, "<abcde@b>") == (None, None)
    finally:
        library.local_part_limit = 0
