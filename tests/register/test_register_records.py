"""What the register records, how follow-ups fold in, the review filters, and secrecy."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from support.register import (
    DAY,
    T0,
    Clock,
    accepted,
    file_bytes,
    make_register,
    message,
    record,
    refused,
)

from gateway.crypto import Keyring
from gateway.events import Evidence, Outcome
from gateway.queue.spool import Spool
from gateway.register.criteria import Filters
from gateway.register.ledger import Register, RegisterError

CONTACT = {
    "j.smith@cafcass.example": {
        "contact_id": "C-012",
        "organisation": "Cafcass North",
        "display_name": "Jane Smith",
    }
}
DISCLOSURE = {
    "consent": "not-sought",
    "reason": "Court order 2023/114 requires the report",
    "family": "F-1042",
    "nature": "Contact session report",
    "safeguarding": False,
    "informed": "",
    "external": True,
}


@pytest.fixture
def reg(tmp_path: Path) -> Register:
    return make_register(tmp_path)


def test_accepted_entry_holds_every_field_the_policy_asks_for(reg: Register) -> None:
    content = message(subject="=?utf-8?q?Report_for_Zo=C3=AB?=", attachment=b"PDFDATA")
    record(reg, accepted("Q1", content=content, disclosure=DISCLOSURE, recipients=CONTACT))
    [r] = reg.records()
    assert (r.seq, r.kind, r.entry.queue_id) == (1, "accepted", "Q1")
    assert r.entry.size == len(content)
    assert r.entry.sha256 == hashlib.sha256(content).hexdigest()
    assert r.staff == "alice@c4f.example"
    assert r.recipients == [
        {
            "address": "j.smith@cafcass.example",
            "contact_id": "C-012",
            "organisation": "Cafcass North",
            "display_name": "Jane Smith",
        }
    ]
    assert r.organisations == ["Cafcass North"]
    assert r.data["subject"] == "Report for Zoë"
    assert r.data["message_id"] == "<m1@c4f.example>"
    assert r.data["attachments"] == [
        {
            "name": "report.pdf",
            "type": "application/pdf",
            "size": 7,
            "sha256": hashlib.sha256(b"PDFDATA").hexdigest(),
        }
    ]
    assert (r.consent, r.reason, r.family, r.nature) == (
        "not-sought",
        DISCLOSURE["reason"],
        "F-1042",
        "Contact session report",
    )
    assert r.data["reply"] == "250 2.0.0 Queued as Q1"
    assert (r.complete, r.retention_hold, r.status) == (True, False, "queued")


def test_without_disclosure_details_an_external_message_is_incomplete(reg: Register) -> None:
    record(reg, accepted("Q1"))  # no disclosure filter ran, no contacts filter ran
    [r] = reg.records()
    assert r.consent == "not-recorded"
    assert r.missing == ["consent"]
    assert r.recipients[0]["organisation"] == ""


def test_refused_entry_keeps_the_reference_and_reply(reg: Register) -> None:
    record(reg, refused("Q9"))
    [r] = reg.records()
    assert (r.kind, r.status) == ("refused", "refused")
    assert r.data["reply"] == "550 5.7.1 Fax routes are not allowed [ref R-1A2B]"
    assert r.data["reference"] == "R-1A2B"
    assert r.recipients[0]["address"] == "x@fax.example"
    assert r.complete  # a refusal shared nothing, so nothing is missing


def _outcome(status: str, at: float, attempt: int) -> Outcome:
    return Outcome(
        queue_id="Q1",
        at=at,
        attempt=attempt,
        status=status,  # type: ignore[arg-type]
        recipients=("j.smith@cafcass.example",),
        reply="250 2.0.0 Ok: queued as X1",
        evidence=Evidence(
            host="smtp.upstream.example",
            tls_version="TLSv1.3",
            cipher="TLS_AES_256_GCM_SHA384",
            cert_sha256="ab" * 32,
        ),
    )


def test_delivery_outcomes_are_follow_ups_with_their_evidence(reg: Register) -> None:
    record(reg, accepted("Q1"))
    with reg.store.transaction() as conn:
        reg.outcome(conn, _outcome("deferred", T0 + 60, 1))
    assert reg.records()[0].status == "deferred (will retry)"
    with reg.store.transaction() as conn:
        reg.outcome(conn, _outcome("delivered", T0 + 600, 2))
    [r] = reg.records()
    assert r.status == "delivered after delay"
    assert [f.kind for f in r.followups] == ["outcome", "outcome"]
    assert all(f.ref == 1 for f in r.followups)
    assert r.followups[1].data["evidence"] == {
        "host": "smtp.upstream.example",
        "tls_version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "cert_sha256": "ab" * 32,
    }


def test_annotations_are_new_entries_that_complete_the_record(reg: Register) -> None:
    record(reg, accepted("Q1", disclosure={"consent": "refused", "external": True}))
    assert reg.records()[0].missing == ["reason"]
    sealed_before = reg.store.query("SELECT sealed, mac FROM register WHERE seq = 1")[0]
    reg.annotate(1, "manager@c4f.example", reason="Risk of harm to the child")
    reg.annotate(1, "manager@c4f.example", informed="yes", informed_on="2024-01-05")
    reg.annotate(1, "manager@c4f.example", concern="Discussed with Alice")
    [r] = reg.records()
    assert (r.reason, r.informed, r.informed_on, r.complete) == (
        "Risk of harm to the child",
        "yes",
        "2024-01-05",
        True,
    )
    assert [c["text"] for c in r.concerns] == ["Discussed with Alice"]
    assert [(f.seq, f.ref, f.kind) for f in r.followups] == [
        (2, 1, "annotation"),
        (3, 1, "annotation"),
        (4, 1, "annotation"),
    ]
    # The original entry was never touched.
    assert reg.store.query("SELECT sealed, mac FROM register WHERE seq = 1")[0] == sealed_before
    assert reg.verify().ok


@pytest.mark.parametrize(
    ("changes", "message_"),
    [
        ({"informed": "maybe"}, "informed must be"),
        ({"informed_on": "5/1/2024"}, "is not a date"),
        ({"consent": "yes"}, "consent must be one of"),
        ({"family": "F 1; DROP"}, "is not a family reference"),
        ({"concern": "   "}, "must not be empty"),
        ({}, "nothing to record"),
        ({"subject": "new"}, "cannot annotate"),
    ],
)
def test_annotate_rejects_bad_details(
    reg: Register, changes: dict[str, str], message_: str
) -> None:
    record(reg, accepted("Q1"))
    with pytest.raises(RegisterError, match=message_):
        reg.annotate(1, "manager", **changes)
    with pytest.raises(RegisterError, match="no register entry 9"):
        reg.annotate(9, "manager", informed="no", informed_reason="Not safe to")


def test_admin_actions_are_recorded_in_the_chain(reg: Register) -> None:
    with reg.store.transaction() as conn:
        seq = reg.record_admin(
            conn,
            "admin@c4f.example",
            "contact added",
            {"address": "j.smith@cafcass.example", "organisation": "Cafcass"},
        )
    [a] = reg.records(Filters(kinds=("admin",)))
    assert a.seq == seq
    assert a.data == {
        "actor": "admin@c4f.example",
        "action": "contact added",
        "details": {"address": "j.smith@cafcass.example", "organisation": "Cafcass"},
    }
    assert reg.verify().ok


def test_review_filters(tmp_path: Path) -> None:
    reg = make_register(tmp_path, Clock())
    record(reg, accepted("A", T0, disclosure=DISCLOSURE, recipients=CONTACT))  # 1
    record(
        reg,
        accepted(
            "B",
            T0 + DAY,
            staff="bob@c4f.example",
            disclosure={
                "consent": "obtained",
                "family": "F-7",
                "external": True,
                "safeguarding": True,
            },
        ),
    )  # 2
    record(reg, accepted("C", T0 + 2 * DAY, rcpts=("x@other.example",)))  # 3: incomplete
    record(reg, refused("D", T0 + 3 * DAY))  # 4

    def seqs(**kw: object) -> list[int]:
        return [r.seq for r in reg.records(Filters(**kw))]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4]
    assert seqs(since=T0 + DAY, until=T0 + 2 * DAY) == [2]
    assert seqs(staff="BOB@c4f.example") == [2]
    assert seqs(recipient="other.example") == [3]
    assert seqs(organisation="cafcass") == [1]
    assert seqs(family="f-1042") == [1]
    assert seqs(consent="obtained") == [2]
    assert seqs(incomplete=True) == [3]
    assert seqs(refused=True) == [4]
    assert seqs(retention_hold=True) == [2]
    assert seqs(held_for_approval=True) == []


def test_reg9_database_file_holds_no_personal_plaintext(tmp_path: Path) -> None:
    """REG-9 / DESIGN: with the file and no key, nothing but times and sizes is learnt."""
    reg = make_register(tmp_path)
    secret = {
        "subject": "Quartermaine contact report",
        "recipient": "zebedee.quartermaine@cafcass.example",
        "name": "Zebedee Quartermaine",
        "organisation": "Wyvernshire Cafcass",
        "reason": "Xylophone court direction",
        "family": "QRT-4417",
        "concern": "Brunhilde raised a worry",
        "staff": "ophelia.staffmember",
    }
    content = message(subject=secret["subject"], name="quartermaine-notes.pdf")
    record(
        reg,
        accepted(
            "Q1",
            content=content,
            rcpts=(secret["recipient"],),
            staff=secret["staff"] + "@c4f.example",
            disclosure={
                "consent": "refused",
                "reason": secret["reason"],
                "family": secret["family"],
                "external": True,
            },
            recipients={
                secret["recipient"]: {
                    "display_name": secret["name"],
                    "organisation": secret["organisation"],
                }
            },
        ),
    )
    reg.annotate(1, "manager", concern=secret["concern"])
    with reg.store.transaction() as conn:
        reg.record_admin(conn, "admin", "contact added", {"address": secret["recipient"]})
    on_disk = file_bytes(tmp_path).lower()
    for word in (
        "quartermaine",
        "zebedee",
        "wyvernshire",
        "xylophone",
        "qrt-4417",
        "brunhilde",
        "ophelia",
        "contact added",
    ):
        assert word.encode() not in on_disk, word
        assert word.encode("utf-16-le") not in on_disk, word
    assert reg.records()[0].data["subject"] == secret["subject"]  # and the key reads it


def test_spool_and_register_commit_together(tmp_path: Path) -> None:
    """The engine's real transaction: queue row and register entry are one commit."""
    reg = make_register(tmp_path)
    Keyring.create(tmp_path / "spool.key")
    spool = Spool(reg.store, Keyring.load(tmp_path / "spool.key"), recorder=reg)
    content = message()
    spool.accept(
        queue_id="S1",
        staff="alice@c4f.example",
        peer="192.0.2.1",
        mail_from="alice@c4f.example",
        rcpt_tos=["j.smith@cafcass.example"],
        content=content,
        annotations={"disclosure": DISCLOSURE, "recipients": CONTACT},
    )
    msg = spool.load("S1")
    assert msg is not None
    done = Outcome(
        queue_id="S1",
        at=T0,
        attempt=1,
        status="delivered",
        recipients=("j.smith@cafcass.example",),
        reply="250 2.0.0 Ok",
    )
    spool.finish(msg, delivered=[0], bounced=[], outcomes=[done], retry_at=None, error="")
    [r] = reg.records()
    assert (r.entry.queue_id, r.entry.sha256, r.status) == (
        "S1",
        hashlib.sha256(content).hexdigest(),
        "delivered",
    )


def test_dur6_failing_register_append_leaves_no_queued_message(tmp_path: Path) -> None:
    """DUR-6: the register append fails -> the acceptance is rolled back (no 250)."""
    reg = make_register(tmp_path)
    Keyring.create(tmp_path / "spool.key")
    spool = Spool(reg.store, Keyring.load(tmp_path / "spool.key"), recorder=reg)
    with reg.store.transaction() as conn:  # a real failure of the database, not a mock
        conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON register "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(Exception, match="disk is full"):
        spool.accept(
            queue_id="S1",
            staff="alice@c4f.example",
            peer="192.0.2.1",
            mail_from="alice@c4f.example",
            rcpt_tos=["j.smith@cafcass.example"],
            content=message(),
        )
    assert reg.store.query("SELECT count(*) AS n FROM queue")[0]["n"] == 0


def test_bounce_notices_are_recorded_without_asking_for_consent(reg: Register) -> None:
    event = accepted("BOUNCE1", staff="", rcpts=("alice@c4f.example",))
    record(reg, dataclasses.replace(event, annotations={"bounce_for": "Q1"}))
    [r] = reg.records()
    assert (r.kind, r.external, r.complete, r.data["bounce_for"]) == ("accepted", False, True, "Q1")
