"""REG-8: purge after the retention period by crypto-shredding, keeping held records."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs
from support.register import DAY, T0, Clock, accepted, file_bytes, make_register, raw, record

from gateway.register.codec import EntryPurged, open_entry
from gateway.register.criteria import Filters
from gateway.register.family_hold import hold_family
from gateway.register.fields import RegisterError
from gateway.register.ledger import PurgeRefused, Register
from gateway.register.purge import purge

RETENTION = 1095 * DAY  # three years, the default (policy, "Storage of information")


def _disc(**kw: object) -> dict[str, object]:
    return {"consent": "obtained", "external": True, **kw}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reg(tmp_path: Path, clock: Clock) -> Register:
    r = make_register(tmp_path, clock)
    record(r, accepted("PLAIN1", T0, disclosure=_disc(family="F-1")))  # 1: due
    record(r, accepted("SAFE", T0, disclosure=_disc(family="F-2", safeguarding=True)))  # 2
    record(r, accepted("SAMEFAM", T0, disclosure=_disc(family="F-2")))  # 3: family held
    record(r, accepted("MANUAL", T0, disclosure=_disc(family="F-3")))  # 4
    record(r, accepted("YOUNG", T0 + 10 * DAY, disclosure=_disc(family="F-4")))  # 5
    r.annotate(4, "manager", hold=True, hold_category="legal", hold_reason="Court order")  # 6
    r.annotate(1, "manager", informed="yes", informed_on="2023-12-01")  # 7
    return r


def _purged(reg: Register) -> list[int]:
    return [r["seq"] for r in reg.store.query("SELECT seq FROM register WHERE sealed IS NULL")]


def test_reg8_the_three_year_boundary_under_an_injected_clock(reg: Register, clock: Clock) -> None:
    clock.now = T0 + RETENTION  # exactly three years: not yet older than the period
    assert purge(reg, actor="serve").entries == []
    clock.now = T0 + RETENTION + 1
    result = purge(reg, actor="serve")
    assert result.records == [1]
    assert result.entries == [1, 7]  # the record and its follow-up go together
    assert result.kept_on_hold == [2, 3, 4]
    assert _purged(reg) == [1, 7]


def test_reg8_purged_data_is_destroyed_and_the_chain_still_verifies(
    reg: Register, tmp_path: Path, clock: Clock
) -> None:
    row = reg.store.query("SELECT sealed, entry_key FROM register WHERE seq = 1")[0]
    sealed, wrapped = bytes(row["sealed"]), bytes(row["entry_key"])
    assert sealed in file_bytes(tmp_path)
    clock.now = T0 + RETENTION + 1
    result = purge(reg, actor="serve")
    with pytest.raises(EntryPurged):
        open_entry(reg.keyring, 1, *_blobs(reg, 1))
    # The data key and the ciphertext are gone from the file and its log (secure_delete).
    on_disk = file_bytes(tmp_path)
    assert sealed not in on_disk
    assert wrapped not in on_disk
    # Hashes are kept: the chain verifies, and the purge is an entry that lists the purged.
    reg.checkpoint()
    assert reg.verify().ok
    purges = reg.records(Filters(kinds=("purge",)))
    assert [p.seq for p in purges] == [result.entry]
    assert purges[0].entry.public["purged"] == [[1, 1], [7, 7]]
    assert purges[0].data["actor"] == "serve"
    record_1 = reg.record(1)
    assert record_1 is not None
    assert record_1.purged
    assert record_1.data == {}


def _blobs(reg: Register, seq: int) -> tuple[bytes | None, bytes | None]:
    row = reg.store.query("SELECT sealed, entry_key FROM register WHERE seq = ?", (seq,))[0]
    return row["sealed"], row["entry_key"]


def test_reg8_purging_is_idempotent(reg: Register, clock: Clock) -> None:
    clock.now = T0 + RETENTION + 1
    first = purge(reg, actor="serve")
    count = reg.store.query("SELECT count(*) AS n FROM register")[0]["n"]
    again = purge(reg, actor="serve")
    assert first.entry is not None
    assert (again.records, again.entries, again.entry) == ([], [], None)
    assert reg.store.query("SELECT count(*) AS n FROM register")[0]["n"] == count


def test_reg8_dry_run_changes_nothing(reg: Register, clock: Clock) -> None:
    clock.now = T0 + RETENTION + 1
    before = reg.store.query("SELECT count(*) AS n FROM register")[0]["n"]
    result = purge(reg, actor="admin", dry_run=True)
    assert result.records == [1]
    assert _purged(reg) == []
    assert reg.store.query("SELECT count(*) AS n FROM register")[0]["n"] == before


def test_reg8_purging_a_held_entry_is_refused_and_logged(reg: Register) -> None:
    with (
        capture_logs() as logs,
        pytest.raises(PurgeRefused, match="entry 3 is under a retention hold"),
    ):
        purge(reg, actor="admin", only=3)  # held through its family's safeguarding flag
    assert _purged(reg) == []
    assert {
        "event": "register_purge_refused",
        "entry": 3,
        "reason": "retention hold",
        "log_level": "warning",
    } in logs
    admin = reg.records(Filters(kinds=("admin",)))
    assert [(a.data["actor"], a.data["action"], a.data["details"]) for a in admin] == [
        ("admin", "purge refused", {"entry": 3, "reason": "retention hold"})
    ]


def test_reg8_released_hold_is_purged_next_time(reg: Register, clock: Clock) -> None:
    clock.now = T0 + RETENTION + 1
    purge(reg, actor="serve")
    reg.annotate(4, "manager", hold=False, hold_reason="Court order lifted")
    assert purge(reg, actor="serve").records == [4]
    record_4 = reg.record(4)
    assert record_4 is not None
    assert record_4.purged


def test_reg8_early_disposal_of_one_record(reg: Register) -> None:
    result = purge(reg, actor="admin", only=5)
    assert result.records == [5]
    assert 5 in _purged(reg)
    with pytest.raises(Exception, match="was purged"):
        reg.annotate(5, "manager", informed="yes", informed_on="2024-01-05")


def test_data_removed_without_a_purge_record_is_named(reg: Register, tmp_path: Path) -> None:
    raw(tmp_path).execute("UPDATE register SET sealed = NULL, entry_key = NULL WHERE seq = 3")
    problems = reg.verify().problems
    assert [p.text for p in problems] == ["entry 3: its data was removed without a purge record"]


@pytest.mark.parametrize("hold", ["record", "family"])
def test_reg8_a_hold_placed_while_the_purge_reads_stops_it(
    reg: Register, clock: Clock, hold: str
) -> None:
    # Record 1 (family F-1) is due; a hold on it, or on its family, comes in after the
    # purge has read the register and before it destroys anything: nothing is destroyed.
    clock.now = T0 + RETENTION + 1

    def hold_now(done: int, total: int) -> None:
        if done == total:
            if hold == "record":
                reg.annotate(1, "m", hold=True, hold_category="injury", hold_reason="Fall")
            else:
                hold_family(reg, "F-1", actor="m", category="legal", reason="Court order")

    with pytest.raises(RegisterError, match="changed while purging"):
        purge(reg, actor="serve", progress=hold_now)
    assert _purged(reg) == []
    assert purge(reg, actor="serve").records == []  # run again, it keeps record 1
    assert _purged(reg) == []
