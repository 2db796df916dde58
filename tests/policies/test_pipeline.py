"""The filter loop: a refusal passes through, anything else fails closed (451 4.3.0)."""

from __future__ import annotations

import pytest

from gateway.envelope import Session, Transaction
from gateway.errors import Refused, TempFailure
from gateway.pipeline import Content, Pipeline, Splices


class Crashes:
    name = "crashes"

    async def on_rcpt(self, tx: Transaction, address: str) -> None:
        raise KeyError("a bug in a check")

    async def on_data(self, tx: Transaction, content: bytes) -> bytes:
        raise RuntimeError("a bug in a check")


class Refuses:
    name = "refuses"

    async def on_mail(self, tx: Transaction) -> None:
        raise Refused(550, "5.7.1", "no")


class ReturnsText:
    name = "returns_text"

    async def on_data(self, tx: Transaction, content: bytes) -> str:
        return content.decode()


def _tx() -> Transaction:
    return Transaction(Session(peer="127.0.0.1", user="a@c4f.example"), queue_id="Q1")


async def test_a_crashing_filter_fails_closed() -> None:
    p = Pipeline([Crashes()])
    with pytest.raises(TempFailure) as err:
        await p.on_rcpt(_tx(), "b@x.example")
    assert err.value.reply().startswith("451 4.3.0")
    with pytest.raises(TempFailure):
        await p.on_data(_tx(), b"From: a@c4f.example\r\n\r\nx\r\n")


async def test_a_refusal_is_passed_on_unchanged() -> None:
    with pytest.raises(Refused) as err:
        await Pipeline([Refuses()]).on_mail(_tx())
    assert err.value.reply() == "550 5.7.1 no"


async def test_a_filter_returning_something_other_than_bytes_fails_closed() -> None:
    with pytest.raises(TempFailure):
        await Pipeline([ReturnsText()]).on_data(_tx(), b"x")  # type: ignore[list-item]


class Message(bytes):
    """A message that says when it is freed (bytes take no weak reference)."""

    freed: list[bytes]

    def __del__(self) -> None:
        self.freed.append(bytes(self))


class Rewrites:
    name = "rewrites"

    def __init__(self, tag: bytes, seen: list[tuple[bytes, list[bytes]]]) -> None:
        self.tag, self.seen = tag, seen

    async def on_data(self, tx: Transaction, content: bytes) -> bytes:
        self.seen.append((bytes(content), list(Message.freed)))
        return Message(self.tag)


async def test_each_filters_input_is_let_go_once_its_output_is_in() -> None:
    Message.freed = []
    seen: list[tuple[bytes, list[bytes]]] = []
    p = Pipeline([Rewrites(b"1", seen), Rewrites(b"2", seen), Rewrites(b"3", seen)])
    taken = [Message(b"0")]  # as the handler passes it: no reference of its own kept
    out = await p.on_data(_tx(), taken.pop())
    assert out == b"3"
    # The message as received is gone before the second filter runs, and so on.
    assert seen == [(b"0", []), (b"1", [b"0"]), (b"2", [b"0", b"1"])]


class Splicing:
    """Returns the splices it was made with, and keeps a view of the message if asked."""

    name = "splicing"

    def __init__(self, *edits: tuple[int, int, bytes], keep_view: bool = False) -> None:
        self.edits, self.keep_view = edits, keep_view
        self.views: list[memoryview] = []

    async def on_data(self, tx: Transaction, content: Content) -> Splices:
        if self.keep_view:
            self.views.append(memoryview(content))  # a bug: the buffer cannot be resized
        return Splices(self.edits)


MESSAGE = b"From: a@c4f.example\r\nSubject: [tag] Report\r\n\r\nbody line\r\n"


async def test_splices_are_made_in_the_message_s_own_buffer() -> None:
    received = bytearray(MESSAGE)
    tag = MESSAGE.index(b"[tag] ")
    end = len(MESSAGE) - 6  # after the first filter's edit
    notice = (end, end, b"-- \r\nnotice\r\n")
    p = Pipeline([Splicing((tag, tag + 6, b"")), Splicing(notice)])
    out = await p.on_data(_tx(), received)
    assert out is received  # no second message was made
    assert out == MESSAGE.replace(b"[tag] ", b"") + b"-- \r\nnotice\r\n"


async def test_splices_of_a_message_given_as_bytes_are_made_in_a_copy() -> None:
    out = await Pipeline([Splicing((0, 0, b"X-A: 1\r\n"))]).on_data(_tx(), MESSAGE)
    assert out == b"X-A: 1\r\n" + MESSAGE


async def test_no_splices_leave_the_very_same_message() -> None:
    """A filter with nothing to change (the notice already there) returns no edits: the
    message goes on as it was, not copied into a buffer to make none."""
    assert await Pipeline([Splicing()]).on_data(_tx(), MESSAGE) is MESSAGE


@pytest.mark.parametrize(
    "edit",
    [
        (0, 0, b"X-A: 1\n"),  # a bare LF
        (len(MESSAGE) - 2, len(MESSAGE) - 2, b"\r"),  # a CR before the final CR LF
        (5, 5, b"\x00"),  # a NUL
        (len(MESSAGE) - 1, len(MESSAGE), b""),  # the final LF removed: a bare CR is left
    ],
)
async def test_a_splice_that_leaves_a_bare_line_end_or_nul_fails_closed(
    edit: tuple[int, int, bytes],
) -> None:
    with pytest.raises(TempFailure):
        await Pipeline([Splicing(edit)]).on_data(_tx(), bytearray(MESSAGE))


@pytest.mark.parametrize(
    "edits",
    [
        ((0, 10, b""), (5, 12, b"")),  # overlapping
        ((10, 5, b""),),  # ending before it starts
        ((0, len(MESSAGE) + 1, b""),),  # past the end
    ],
)
async def test_splices_that_cannot_be_made_fail_closed(
    edits: tuple[tuple[int, int, bytes], ...],
) -> None:
    received = bytearray(MESSAGE)
    with pytest.raises(TempFailure):
        await Pipeline([Splicing(*edits)]).on_data(_tx(), received)
    assert received == MESSAGE  # checked before anything was changed


async def test_a_view_left_open_on_the_message_fails_closed() -> None:
    f = Splicing((0, 0, b"X-A: 1\r\n"), keep_view=True)
    with pytest.raises(TempFailure):
        await Pipeline([f]).on_data(_tx(), bytearray(MESSAGE))
    f.views[0].release()
