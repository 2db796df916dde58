"""Every table the spool key seals, across ``keys rotate spool``, ``reseal`` and
``retire``: a held message (its sender found by keyed hash), an approved one with its
proof and a body large enough for a file of its own (its key is in the row's envelope,
resealed with it), a delivery error, a console session's state and a TOTP secret. The readers are
the gateway's own classes, opened before the rotation in this process; the key commands
run in other processes, as an operator runs them while ``serve`` and ``web`` are up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyotp
import pytest
from support.pki import TestCA
from support.subprocess_gateway import prepare, run_cli

from gateway.crypto import Keyring, key_id_of
from gateway.holds.table import HoldsTable
from gateway.queue import release
from gateway.queue.sealed import open_note, seal_note
from gateway.queue.spool import Spool
from gateway.settings import load
from gateway.store import Store
from gateway.web.sessions import SessionStore
from gateway.web.totp import LINK_PURPOSE, TotpStore

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"
pytestmark = pytest.mark.slow


def keys(config: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli("keys", *args, "--config", config, "--by", "admin")
    return done.returncode, done.stdout, done.stderr


def settle(path: Path) -> None:
    """Date the key file back past ``keys retire``'s settling time (60 s)."""
    then = time.time() - 120
    os.utime(path, (then, then))


def test_every_spool_sealed_table_survives_rotation_and_retire(tmp_path: Path, ca: TestCA) -> None:
    config = prepare(tmp_path / "gw", ca)
    settings = load(config)
    store = Store(settings.storage.database)
    ring = Keyring.load(settings.storage.spool_key_file)
    spool = Spool(store, ring)
    holds = HoldsTable(store, ring)
    totp = TotpStore(store, ring)
    sessions = SessionStore(store, ring, idle_timeout=3600, max_age=86400, clock=time.time)
    old = ring.current_id

    large = b"Subject: x\r\n\r\n" + b"SEALED-BODY in a file of its own\r\n" * 3000

    def accept(qid: str, held: bool, content: bytes = b"Subject: x\r\n\r\nSEALED-BODY\r\n") -> None:
        def hold(conn: object, _event: object) -> None:
            holds.insert(
                conn,  # type: ignore[arg-type]
                queue_id=qid,
                staff=ALICE,
                held_at=1.0,
                expires_at=2e9,
                needs_note=True,
                reasons=("consent not sought",),
            )

        spool.accept(
            queue_id=qid,
            staff=ALICE,
            peer="127.0.0.1",
            mail_from=ALICE,
            rcpt_tos=["bob@c4f.example"],
            content=content,
            held=held,
            also=hold if held else None,
        )

    accept("HELD00000001", held=True)
    accept("APPR00000002", held=True, content=large)
    assert spool.bodies.names() == ["APPR00000002"]
    body_file = spool.bodies.path("APPR00000002").read_bytes()
    with store.transaction() as conn:
        assert spool.release(conn, "APPR00000002", "manager@c4f.example")
        conn.execute(
            "UPDATE queue SET last_error = ? WHERE id = ?",
            (seal_note(ring, "APPR00000002", "451 greylisted"), "APPR00000002"),
        )
    secret = totp.enrol(ALICE)
    session = sessions.create(ALICE, "full")
    session.state = {"filter": "held"}
    sessions.save_state(session)

    code, _out, err = keys(config, "rotate", "spool")
    assert code == 0, err
    new = Keyring.load(settings.storage.spool_key_file).current_id
    settle(settings.storage.spool_key_file)
    code, _out, err = keys(config, "retire", old)
    assert code == 2
    for needed in ("queue.blob 2", "queue.staff 2", "queue.last_error 1"):
        assert needed in err
    for needed in ("queue_release.proof 1", "holds.staff 2", "holds.reasons 2"):
        assert needed in err
    assert "web_sessions.state 1" in err and "web_totp.secret 1" in err

    code, out, err = keys(config, "reseal", "spool")
    assert code == 0, err
    assert f"spool: 12 re-sealed under {new}" in out
    code, out, err = keys(config, "retire", old)
    assert code == 0, err
    assert Keyring.load(settings.storage.spool_key_file).ids == [new]

    # Everything is now under the new key, and this process (which loaded the old file)
    # reads it all through the same objects: its keyring followed the file.
    for table, column in [
        ("queue", "blob"), ("queue", "staff"), ("queue_release", "proof"),
        ("holds", "staff"), ("holds", "reasons"), ("web_sessions", "state"),
        ("web_totp", "secret"),
    ]:  # fmt: skip
        found = {key_id_of(r[0]) for r in store.query(f"SELECT {column} FROM {table}")}  # noqa: S608
        assert found == {new}, table
    assert ring.ids == [new]
    mine = holds.sent_by([ALICE.upper()])  # found by the keyed hash, renewed with the row
    assert sorted(h.queue_id for h in mine) == ["APPR00000002", "HELD00000001"]
    assert {(h.staff, h.reasons) for h in mine} == {(ALICE, ("consent not sought",))}
    assert holds.count_sent_by([ALICE]) == 2
    assert holds.count_sent_by(["bob@c4f.example"]) == 0
    loaded = spool.load("APPR00000002")  # a held message opens only with a valid proof
    assert loaded is not None and loaded.content == large
    assert spool.bodies.path("APPR00000002").read_bytes() == body_file  # the file untouched
    (row,) = store.query("SELECT last_error FROM queue WHERE id = 'APPR00000002'")
    assert open_note(ring, "APPR00000002", row["last_error"]) == "451 greylisted"
    (proof,) = store.query("SELECT proof FROM queue_release")
    (sha,) = store.query("SELECT sha256 FROM queue WHERE id = 'APPR00000002'")
    assert release.approved(ring, "APPR00000002", sha[0], proof[0])
    assert totp.check(ALICE, pyotp.TOTP(secret).now())
    again = sessions.get(session.token)
    assert again is not None and again.state == {"filter": "held"}
    store.close()


def test_an_enrolment_link_in_progress_keeps_its_key_until_it_is_used(
    tmp_path: Path, ca: TestCA
) -> None:
    """An admin issued ALICE and BOB links; ALICE gave her password (her pending secret is
    sealed) when the spool key rotates. `keys list` counts both links and ALICE's secret
    under the old key; `reseal` seals her secret again, but a link is found by its token's
    keyed hash, which needs the key it was issued under: `retire` is refused until ALICE
    has confirmed her code and BOB has been issued a new link."""
    config = prepare(tmp_path / "gw", ca)
    settings = load(config)
    store = Store(settings.storage.database)
    ring = Keyring.load(settings.storage.spool_key_file)
    totp = TotpStore(store, ring)
    old = ring.current_id
    token = totp.issue_link(ALICE)
    bobs = totp.issue_link(BOB)
    issued = totp.link(token)
    assert issued is not None
    proof = totp.start(issued)
    link = totp.link(token)  # as the next page finds it: with the proof of the password
    assert link is not None
    secret = totp.pending(link, proof)
    assert secret is not None

    def needed_by(key_id: str) -> str:
        listed = run_cli("keys", "list", "--config", config)
        assert listed.returncode == 0, listed.stderr
        [line] = [line for line in listed.stdout.splitlines() if f" {key_id} " in line]
        return " ".join(line.split()[3:])

    code, _out, err = keys(config, "rotate", "spool")
    assert code == 0, err
    new = Keyring.load(settings.storage.spool_key_file).current_id
    assert needed_by(old) == "web_totp_links.secret 1, totp enrolment links 2"
    settle(settings.storage.spool_key_file)
    code, _out, err = keys(config, "retire", old)
    assert code == 2
    assert f"{old} is still needed by web_totp_links.secret 1, totp enrolment links 2" in err

    code, out, err = keys(config, "reseal", "spool")
    assert code == 0, err
    assert ["web_totp_links.secret", "1", "0"] in [line.split() for line in out.splitlines()]
    (row,) = store.query("SELECT secret FROM web_totp_links WHERE secret IS NOT NULL")
    assert key_id_of(row["secret"]) == new
    assert needed_by(old) == "totp enrolment links 2"
    code, _out, err = keys(config, "retire", old)
    assert code == 2
    assert err.count("\n") == 1 and "issue that person a new link" in err, err

    # ALICE's browser is shown the same secret, and a code from it confirms it; BOB is
    # issued a new link (under the new key), which ends his old one.
    assert totp.pending(link, proof) == secret
    assert totp.confirm(link, proof, pyotp.TOTP(secret).now())
    assert totp.check(ALICE, pyotp.TOTP(secret).now()) is False  # that code is used
    bobs_new = totp.issue_link(BOB)
    assert needed_by(old) == "nothing"
    code, _out, err = keys(config, "retire", old)
    assert code == 0, err
    assert totp.link(bobs) is None and totp.link(bobs_new) is not None
    # A link issued before the key's id was stored beside its hash still opens.
    legacy, now = "a-token-from-an-earlier-release", time.time()
    store.execute(
        "INSERT INTO web_totp_links (key, login, issued, expires) VALUES (?, ?, ?, ?)",
        (ring.lookups(legacy, LINK_PURPOSE)[0], "carol@c4f.example", now, now + 3600),
    )
    found = totp.link(legacy)
    assert found is not None and found.login == "carol@c4f.example"
    store.close()
