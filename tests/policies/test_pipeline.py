"""The filter loop: a refusal passes through, anything else fails closed (451 4.3.0)."""

from __future__ import annotations

import pytest

from gateway.envelope import Session, Transaction
from gateway.errors import Refused, TempFailure
from gateway.pipeline import Pipeline


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
