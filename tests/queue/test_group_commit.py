"""Group commit (gateway.store.Store.together): acceptances from concurrent sessions share
one transaction and one fsync; 250 only after the commit that covers the message, 451 to
every message of a commit that fails; lookups never wait behind a commit.

The Store-level tests make the batching certain (a write that waits inside the commit
thread's transaction while others are handed in); the session-level tests check what
clients see and what is on disk after the database is opened again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosmtplib
import pytest
from conftest import StartGateway
from support.delivery import until
from support.harness import message
from support.register import accepted as register_accepted
from support.register import make_register
from support.register import message as register_message
from support.upstream import Upstream

import gateway.store_group
from gateway.events import Accepted, NullRecorder
from gateway.queue.spool import Spool
from gateway.register.message import Summary
from gateway.store import Store

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"

DDL = """
CREATE TABLE IF NOT EXISTS item (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS parent (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS child (parent TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "group.db")
    s.ensure(DDL)
    yield s
    s.close()


def names(path: Path) -> list[str]:
    """What is on disk, read by a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM item"))
    finally:
        conn.close()


Write = Callable[[sqlite3.Connection], str]


def insert(name: str, *, poison: bool = False, fail: bool = False) -> Write:
    def write(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO item (name) VALUES (?)", (name,))
        if poison:  # checked only at COMMIT, which then fails
            conn.execute("INSERT INTO child (parent) VALUES ('missing')")
        if fail:
            raise ValueError(f"{name} cannot be written")
        return name

    return write


class Held:
    """A write that keeps the commit thread inside its transaction until released."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entered = threading.Event()
        self.release = threading.Event()
        self.result: list[object] = []
        self.thread = threading.Thread(target=self._run)

    def _write(self, conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO item (name) VALUES ('held')")
        self.entered.set()
        assert self.release.wait(10)
        return "held"

    def _run(self) -> None:
        self.result.append(self.store.together(self._write))

    def __enter__(self) -> Held:
        self.thread.start()
        assert self.entered.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)


def hand_in(
    store: Store, writes: list[Write], results: dict[str, object]
) -> list[threading.Thread]:
    def run(i: int) -> None:
        try:
            results[str(i)] = store.together(writes[i])
        except Exception as exc:
            results[str(i)] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while store.group.waiting() < len(writes):
        assert time.monotonic() < deadline, "the writes were not handed in"
        time.sleep(0.005)
    return threads


def shared_commit(store: Store, writes: list[Write]) -> dict[str, object]:
    """What each write returned or raised, handed in while a held write keeps the commit
    thread busy, so that they all share the next commit."""
    results: dict[str, object] = {}
    with Held(store):
        threads = hand_in(store, writes, results)
    for t in threads:
        t.join(10)
    return results


def test_writes_handed_in_during_a_commit_share_the_next_one(store: Store) -> None:
    results: dict[str, object] = {}
    with Held(store):
        threads = hand_in(store, [insert(f"m{i}") for i in range(8)], results)
        assert names(store.path) == []  # nothing is on disk before its commit
    for t in threads:
        t.join(10)
    assert results == {str(i): f"m{i}" for i in range(8)}
    assert store.group.commits == 2  # the held write's, then one for all eight
    assert names(store.path) == sorted(["held", *(f"m{i}" for i in range(8))])


def test_a_failed_commit_fails_every_write_in_it(store: Store) -> None:
    results = shared_commit(store, [insert("a"), insert("doomed", poison=True), insert("c")])
    assert all(isinstance(results[k], sqlite3.IntegrityError) for k in "012"), results
    assert names(store.path) == ["held"]
    # The commit thread goes on: the next write is committed.
    assert store.together(insert("after")) == "after"
    assert names(store.path) == ["after", "held"]


def test_a_write_that_raises_is_undone_alone(store: Store) -> None:
    results = shared_commit(store, [insert("a"), insert("b", fail=True), insert("c")])
    assert results["0"] == "a" and results["2"] == "c"
    assert isinstance(results["1"], ValueError)
    assert names(store.path) == ["a", "c", "held"]


def test_lookups_do_not_wait_behind_a_commit(store: Store) -> None:
    store.execute("INSERT INTO item (name) VALUES ('before')")
    found: list[list[str]] = []
    with Held(store):
        reader = threading.Thread(
            target=lambda: found.append(
                [r["name"] for r in store.query("SELECT name FROM item ORDER BY name")]
            )
        )
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "a SELECT waited for the commit in progress"
    assert found == [["before"]]  # the last commit, not the write in progress


def test_a_transaction_reads_its_own_writes_and_writes_inside_it(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO item (name) VALUES ('mine')")
        assert [r["name"] for r in store.query("SELECT name FROM item")] == ["mine"]
        assert store.together(insert("nested")) == "nested"  # part of this transaction
    assert names(store.path) == ["mine", "nested"]


class Message:
    """Stands for a message a write holds (bytes take no weak reference)."""


def test_the_writes_are_let_go_before_any_caller_hears(store: Store) -> None:
    """A caller told its message is committed may deliver it at once (reading it again):
    by then the commit thread must hold neither the write nor the message it closes over,
    or the message is in memory twice."""
    held = Message()
    gone = weakref.ref(held)

    def write(conn: sqlite3.Connection, message: Message = held) -> str:
        conn.execute("INSERT INTO item (name) VALUES ('last')")
        return "written"

    seen: list[bool] = []
    with Held(store):  # the commit thread is busy: the callback is in before the commit
        done = store.group.submit(write)
        del write, held
        done.add_done_callback(lambda _: seen.append(gone() is None))  # in the commit thread
    assert done.result(10) == "written"
    assert seen == [True]


async def test_together_async_waits_for_the_commit(store: Store) -> None:
    got = await asyncio.gather(*(store.together_async(insert(f"x{i}")) for i in range(5)))
    assert got == [f"x{i}" for i in range(5)]
    assert names(store.path) == [f"x{i}" for i in range(5)]


def test_an_idle_commit_thread_ends_and_a_dropped_store_lets_go_of_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.store_group, "GROUP_IDLE", 0.05)
    path = tmp_path / "dropped.db"
    dropped = Store(path)
    dropped.ensure(DDL)
    assert dropped.together(insert("x")) == "x"
    gone = weakref.ref(dropped)
    del dropped
    deadline = time.monotonic() + 10
    while gone() is not None:
        assert time.monotonic() < deadline, "the commit thread kept the store alive"
        gc.collect()
        time.sleep(0.02)
    Store(path, exclusive=True).close()  # its lock on DATABASE.lock is released
    assert names(path) == ["x"]


# -- through SMTP sessions -------------------------------------------------------------


async def test_concurrent_sessions_all_get_250_and_all_survive(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(folder=tmp_path / "gw", deliver=False)  # acceptances only
    gw.add_staff(ALICE)
    replies = await asyncio.gather(
        *(gw.send(ALICE, [BOB], message(ALICE, [BOB], subject=f"m{i}")) for i in range(20))
    )
    ids = sorted(reply.split()[-1] for _errors, reply in replies)
    assert all("Queued as" in reply for _errors, reply in replies)
    assert len(set(ids)) == 20
    assert gw.gateway.store.group.writes == 20  # every acceptance went through group commit
    database = gw.settings.storage.database
    await gw.gateway.stop()
    reopened = Store(database)
    try:
        rows = reopened.query("SELECT queue_id FROM register WHERE kind = 'accepted'")
        assert sorted(r["queue_id"] for r in rows) == ids
    finally:
        reopened.close()


async def test_delivery_outcomes_are_committed_with_the_group(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    """Each finished delivery's record (recipient states, the register's outcome, the row
    removed) goes through group commit too, not a transaction and fsync of its own."""
    gw = await start_gateway(upstream=upstream)
    gw.add_staff(ALICE)
    await asyncio.gather(
        *(gw.send(ALICE, [BOB], message(ALICE, [BOB], subject=f"m{i}")) for i in range(5))
    )
    await upstream.wait_for(5)
    # The counter moves just after the COMMIT: wait for it, not for the queue to empty.
    await until(lambda: gw.gateway.store.group.writes >= 10)
    assert gw.gateway.store.group.writes == 10  # five acceptances, five outcomes
    assert gw.gateway.store.query("SELECT id FROM queue") == []
    outcomes = gw.gateway.store.query("SELECT count(*) AS n FROM register WHERE kind = 'outcome'")
    assert outcomes[0]["n"] == 5


class CommitFails(NullRecorder):
    """Every acceptance writes a row whose deferred foreign key fails the COMMIT."""

    def accepted(self, conn: sqlite3.Connection, event: Accepted) -> None:
        conn.execute("INSERT INTO child (parent) VALUES ('missing')")


async def test_a_failed_shared_commit_answers_451_to_each_session(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(recorder=CommitFails())
    gw.add_staff(ALICE)
    gw.gateway.store.ensure(DDL)

    async def send(i: int) -> aiosmtplib.SMTPResponseException:
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await gw.send(ALICE, [BOB], message(ALICE, [BOB], subject=f"m{i}"))
        return refused.value

    refusals = await asyncio.gather(*(send(i) for i in range(10)))
    assert [(r.code, r.message[:6]) for r in refusals] == [(451, "4.3.0 ")] * 10
    assert gw.gateway.store.query("SELECT count(*) AS n FROM queue")[0]["n"] == 0
    assert gw.gateway.store.group.writes == 0


def test_the_register_reads_a_message_before_its_transaction(tmp_path: Path) -> None:
    """Parsing a message for the register (subject, attachments: 23 ms a megabyte) is done
    with the sealing, before the shared transaction, not under the write lock."""
    reg = make_register(tmp_path)
    spool = Spool(reg.store, reg.keyring, recorder=reg)
    read: list[bytes] = []
    summarise = reg.summarise

    def counted(content: bytes) -> Summary:
        read.append(content)
        return summarise(content)

    reg.summarise = counted  # type: ignore[method-assign]
    write = spool.sealed(
        queue_id="Q1",
        staff=ALICE,
        peer="192.0.2.10",
        mail_from=ALICE,
        rcpt_tos=["j.smith@cafcass.example"],
        content=register_message(subject="Read early"),
    )
    assert len(read) == 1  # read when sealed, before the write is handed in
    event = reg.store.together(write)
    assert len(read) == 1  # and not again in the transaction
    assert isinstance(event.summary, Summary) and event.summary.subject == "Read early"
    # The register records what was read then, not a second reading of the content.
    given = dataclasses.replace(
        register_accepted("Q2", content=register_message(subject="in the content")),
        summary=Summary(message_id="<given@c4f.example>", subject="given"),
    )
    reg.store.together(lambda conn: reg.accepted(conn, given))
    first, second = reg.records()
    assert first.data["subject"] == "Read early"
    assert (second.data["subject"], second.data["message_id"]) == ("given", "<given@c4f.example>")
    reg.store.close()
