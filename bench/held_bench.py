"""What holding a message for approval costs at acceptance, and what deciding costs.

Baseline, measured in the same run on the same file settings: accepting the same message
normally (sealed into the spool with its register entry, one transaction each). Then the
same number of messages accepted as held (plus the hold row, the "held" register entry
and the sender's notice, still one transaction each), approved one by one (register
entry, release), and refused one by one (register entry, removal, notice, and the
checkpoint that empties the WAL after each). Figures are ratios to the baseline.

    .venv/bin/python bench/held_bench.py [--messages 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.crypto import Keyring
from gateway.directory.staff import StaffDirectory
from gateway.holds.service import Holds
from gateway.logging import configure
from gateway.queue.spool import Spool, new_queue_id
from gateway.register.codec import MacKey
from gateway.register.ledger import Register
from gateway.store import Store

STAFF, MANAGER, CONTACT = "alice@c4f.example", "mona@c4f.example", "j.smith@cafcass.example"
MESSAGE = (
    b"From: alice@c4f.example\r\nTo: j.smith@cafcass.example\r\n"
    b"Subject: Contact session report\r\nMessage-ID: <bench@c4f.example>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + b"Notes from the supervised contact session.\r\n"
    * 40
)
DISCLOSURE = {"consent": "refused", "reason": "Risk of harm", "external": True}
HOLD = {"reasons": ["consent refused"], "needs_note": True, "expires_after": 7 * 86400.0}


def setup(folder: Path) -> tuple[Spool, Holds]:
    for name in ("spool.key", "register.key"):
        Keyring.create(folder / name)
    MacKey.create(folder / "mac.key")
    store = Store(folder / "bench.db")
    register = Register(
        store, Keyring.load(folder / "register.key"), folder / "mac.key", folder / "cp"
    )
    spool = Spool(store, Keyring.load(folder / "spool.key"), register)
    staff = StaffDirectory(store)
    staff.add(MANAGER, "x" * 16, role="manager")
    staff.add(STAFF, "x" * 16, managers=(MANAGER,))
    return spool, Holds(spool, staff, "gateway.test")


def accept(fn: Callable[..., Any], held: bool) -> str:
    annotations: dict[str, Any] = {"disclosure": DISCLOSURE}
    if held:
        annotations["hold"] = HOLD
    qid = new_queue_id()
    fn(
        queue_id=qid,
        staff=STAFF,
        peer="192.0.2.10",
        mail_from=STAFF,
        rcpt_tos=[CONTACT],
        content=MESSAGE,
        annotations=annotations,
    )
    return qid


def timed(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500)
    n = ap.parse_args().messages
    configure(level="warning")
    with tempfile.TemporaryDirectory() as tmp:
        spool, holds = setup(Path(tmp))
        base = timed(lambda: accept(spool.accept, False), n)
        held_ids: list[str] = []
        hold = timed(lambda: held_ids.append(accept(holds.accept, True)), 2 * n)
        approve_ids, refuse_ids = held_ids[:n], held_ids[n:]
        approve = timed(lambda: holds.approve(approve_ids.pop(), MANAGER, "Discussed"), n)
        refuse = timed(lambda: holds.refuse(refuse_ids.pop(), MANAGER, "Seek consent"), n)
    per = base / n
    print(f"{n} messages of {len(MESSAGE)} bytes; baseline = normal acceptance")
    print(f"  accept (baseline)  {per * 1e3:7.2f} ms/msg   1.00")
    for label, total, count in (
        ("accept as held", hold, 2 * n),
        ("approve", approve, n),
        ("refuse + shred", refuse, n),
    ):
        each = total / count
        print(f"  {label:<17}  {each * 1e3:7.2f} ms/msg  {each / per:5.2f}")


if __name__ == "__main__":
    main()
