"""Two workers' login throttles over the real datagram inboxes (gateway.throttle.Peers):
a failure is told to the other worker; a success is told only when it clears a failure,
and then clears it there too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.throttle import LoginThrottle, Peers

CLIENT = "192.0.2.7"
Worker = tuple[LoginThrottle, Peers]


@pytest.fixture
def workers() -> Iterator[tuple[Worker, Worker]]:
    sockets = Peers.pairs(2)
    made = []
    for index in range(2):
        throttle = LoginThrottle(per_client=3, per_account=3, window=60.0)
        peers = Peers(sockets, index)
        throttle.peers = peers
        made.append((throttle, peers))
    yield made[0], made[1]
    for pair in sockets:
        for end in pair:
            end.close()


def read(worker: Worker) -> int:
    """Apply what is waiting in the worker's inbox, as its event loop would; how many."""
    throttle, peers = worker
    told = []
    original = throttle.heard
    throttle.heard = lambda *a: (told.append(a), original(*a))  # type: ignore[method-assign]
    try:
        peers._read(throttle, lambda: None)
    finally:
        del throttle.heard
    return len(told)


def test_a_failure_is_counted_by_both_and_a_success_clears_both(
    workers: tuple[Worker, Worker],
) -> None:
    first, second = workers
    first[0].failed(CLIENT, "Alice@c4f.example")
    assert read(second) == 1
    assert second[0].blocked(CLIENT, "alice@c4f.example") == ""
    second[0].failed(CLIENT, "alice@c4f.example")
    first[0].failed(CLIENT, "alice@c4f.example")
    assert read(second) == 1 and read(first) == 1
    assert first[0].blocked(CLIENT, "alice@c4f.example") == "client"
    assert second[0].blocked(CLIENT, "alice@c4f.example") == "client"
    second[0].succeeded(CLIENT, "alice@c4f.example")
    assert read(first) == 1  # told: it had something to clear
    assert first[0].blocked(CLIENT, "alice@c4f.example") == ""
    assert second[0].blocked(CLIENT, "alice@c4f.example") == ""


def test_a_success_with_nothing_to_clear_is_told_to_no_one(
    workers: tuple[Worker, Worker],
) -> None:
    first, second = workers
    first[0].succeeded(CLIENT, "bob@c4f.example")
    assert read(second) == 0
    first[0].failed(CLIENT, "carol@c4f.example")
    assert read(second) == 1
    first[0].succeeded(CLIENT, "bob@c4f.example")  # another login's failure stays
    assert read(second) == 0
    assert second[0].blocked(CLIENT, "carol@c4f.example") == ""
    assert len(second[0]._clients[CLIENT]) == 1
