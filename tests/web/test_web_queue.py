"""The queue page: state and last error, never content; retry and delete (confirmed)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from support.pki import TestCA
from support.web import ADMIN, STAFF, Site, admin_actions, hold, make_site, signed_in

from gateway.errors import SpoolCorrupt

SUBJECT = "Contact notes for the Smith family"
BODY = "The child said something that must stay private."


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    site = make_site(tmp_path / "gw", ca)
    spool = site.console.spool
    for qid in ("AAAAAAAAAAA1", "BBBBBBBBBBB2"):
        spool.accept(
            queue_id=qid,
            staff="alice@c4f.example",
            peer="192.0.2.1",
            mail_from="alice@c4f.example",
            rcpt_tos=["j.smith@cafcass.example"],
            content=f"Subject: {SUBJECT}\r\n\r\n{BODY}\r\n".encode(),
        )
    msg = spool.load("AAAAAAAAAAA1")
    assert msg is not None
    spool.finish(
        msg,
        delivered=[],
        bounced=[],
        outcomes=[],
        retry_at=time.time() + 3600,
        error="451 4.4.1 upstream did not answer",
    )
    # B's sealed blob is damaged on disk: loading it sets it aside (DUR-4).
    blob = bytearray(site.store.query("SELECT blob FROM queue WHERE id = 'BBBBBBBBBBB2'")[0][0])
    blob[-1] ^= 1
    site.store.execute("UPDATE queue SET blob = ? WHERE id = 'BBBBBBBBBBB2'", (bytes(blob),))
    with pytest.raises(SpoolCorrupt):
        spool.load("BBBBBBBBBBB2")
    return site


def _row(html: str, qid: str) -> str:
    found = re.search(rf'<td class="hash">{qid}</td>(.*?)</tr>', html, re.S)
    assert found is not None, qid
    return found.group(1)


def test_queue_shows_state_and_error_but_never_content(site: Site) -> None:
    with site.client() as client:
        signed_in(client, ADMIN)
        html = client.get("/queue").text
    a, b = _row(html, "AAAAAAAAAAA1"), _row(html, "BBBBBBBBBBB2")
    assert "deferred (will retry)" in a and "451 4.4.1 upstream did not answer" in a
    assert "set aside (failed its integrity check)" in b
    for secret in (SUBJECT, BODY, "Smith family", "j.smith@cafcass.example"):
        assert secret not in html


def test_retry_and_confirmed_delete(site: Site) -> None:
    spool = site.console.spool
    with site.client() as client:
        csrf = signed_in(client, ADMIN)
        done = client.post("/queue/AAAAAAAAAAA1/retry", data={"csrf": csrf}).text
        assert "AAAAAAAAAAA1 will be tried now." in done
        [row] = [r for r in spool.rows() if r.queue_id == "AAAAAAAAAAA1"]
        assert row.next_attempt <= time.time()
        still = client.post("/queue/BBBBBBBBBBB2/retry", data={"csrf": csrf}).text
        assert "still fails its integrity check" in still
        confirm = client.get("/queue/BBBBBBBBBBB2/delete").text
        assert "Delete message BBBBBBBBBBB2 from the queue for good" in confirm
        assert len(spool.rows()) == 2  # asking deleted nothing
        gone = client.post("/queue/BBBBBBBBBBB2/delete", data={"csrf": csrf}).text
        assert "Deleted BBBBBBBBBBB2." in gone
        again = client.post("/queue/BBBBBBBBBBB2/delete", data={"csrf": csrf}).text
        assert "BBBBBBBBBBB2: not in the queue." in again
        odd = client.post("/queue/not-an-id/delete", data={"csrf": csrf}).text
        assert "That message: not in the queue." in odd
    assert [r.queue_id for r in spool.rows()] == ["AAAAAAAAAAA1"]
    assert [(a, d) for _, a, d in admin_actions(site) if a.startswith("queue")] == [
        ("queue retry", {"queue_id": "AAAAAAAAAAA1"}),
        ("queue delete", {"queue_id": "BBBBBBBBBBB2"}),
    ]


def test_held_messages_show_as_held_with_a_link_to_decide_and_no_retry_or_delete(
    site: Site,
) -> None:
    """Held messages were listed as "waiting" with Retry and Delete, which answered "not in
    the queue": only a decision moves them, on the Held messages page."""
    hold(site, "CCCCCCCCCCC3", STAFF, consent="refused", reasons=["consent refused"])
    with site.client() as client:
        signed_in(client, ADMIN)
        html = client.get("/queue").text
    row = _row(html, "CCCCCCCCCCC3")
    assert "held for approval" in row and "waiting" not in row
    assert '<a href="/held/CCCCCCCCCCC3" aria-label="Decide on CCCCCCCCCCC3">' in row
    assert "Retry" not in row and "Delete" not in row
    assert "Retry" in _row(html, "AAAAAAAAAAA1")  # the others keep their actions
