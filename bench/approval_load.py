"""How many held messages a line manager decides per day: a simulated month, twice.

    .venv/bin/python bench/approval_load.py [--days 20] [--staff 20] [--per-day 6] [--seed 1]

A real gateway (the full policy chain, the Maildir transport) and real SMTP sessions: each
member of staff logs in once a working day and sends ``--per-day`` messages to contacts at
ten organisations. Of the messages, 70 % are replies in an existing conversation (to a
message that left without a hold, which the agency answered; the reply carries
``References`` and no tags; nothing held is approved in this run), 20 % new tagged messages
(mostly ``[consent:obtained]``, some refused or not sought with a reason, a few
``[safeguarding]``) and 10 % new untagged ones. Four managers, five staff each. The same
month (same seed) runs with ``[filter.disclosure] inherit_from_thread`` off, then on;
reported: holds per manager per working day, and why they were held. A third run adds the
staff completing their own untagged messages in the console (here: all of them, with the
consent they had).

A manager should decide only what the policy requires (consent refused or not sought,
safeguarding, contacts that require approval, no consent status), not every reply.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS)]

from support.contacts import approved  # noqa: E402
from support.harness import SMTP_POLICY, RunningGateway, message, start_gateway  # noqa: E402
from support.pki import TestCA  # noqa: E402

from filters.approval import ApprovalFilter, policy_from  # noqa: E402
from gateway.directory.contacts import ContactRepository  # noqa: E402
from gateway.directory.contacts_sealed import keyring_for  # noqa: E402
from gateway.envelope import Session, Transaction  # noqa: E402
from gateway.holds.completion import complete  # noqa: E402
from gateway.logging import configure  # noqa: E402

CHAIN = ["sender", "fax_route", "contacts", "disclosure", "approval", "disclaimer"]
ORGS = [f"agency{i}" for i in range(10)]


@dataclass
class Month:
    messages: int
    held: int
    mean: float  # holds per manager per working day
    most: int
    reasons: collections.Counter[str]
    kinds: collections.Counter[str]


def tagged(rng: random.Random) -> tuple[str, str]:
    """A new tagged message's subject tags, and its kind for the report."""
    roll = rng.random()
    if roll < 0.05:
        return "[consent:obtained] [safeguarding] ", "new, safeguarding"
    if roll < 0.15:
        return "[consent:refused] [reason:risk of harm to the child] ", "new, consent refused"
    if roll < 0.25:
        return "[consent:not-sought] [reason:court order] ", "new, consent not sought"
    return "[consent:obtained] ", "new, consent obtained"


async def month(
    folder: Path, args: argparse.Namespace, inherit: bool, self_complete: bool
) -> Month:
    rng = random.Random(args.seed)
    config = {
        "pipeline": {"filters": CHAIN},
        "filter": {"disclosure": {"inherit_from_thread": inherit}},
        "delivery": {"transport": "maildir"},
    }
    gw = await start_gateway(folder, TestCA(folder / "pki"), config=config)
    try:
        staff = _people(gw, args.staff)
        contacts = _contacts(gw)
        threads: list[tuple[str, str]] = []  # (Message-ID, organisation) of what was sent
        holds: collections.Counter[tuple[int, str]] = collections.Counter()
        reasons: collections.Counter[str] = collections.Counter()
        kinds: collections.Counter[str] = collections.Counter()
        serial = 0
        approval = ApprovalFilter(policy_from({}), gw.settings.organisation.domains)

        def judge(rcpt_tos: list[str], annotations: dict[str, Any]) -> list[str]:
            tx = Transaction(Session(peer=""), "", rcpt_tos=rcpt_tos, annotations=annotations)
            return approval.reasons(tx)

        for day in range(args.days):
            for login, manager in staff:
                client = await gw.client(login)
                try:
                    for _ in range(args.per_day):
                        serial += 1
                        msg, kind, org = _next(rng, login, threads, contacts, serial)
                        kinds[kind] += 1
                        to = [str(msg["To"])]
                        content = msg.as_bytes(policy=SMTP_POLICY)
                        _errors, reply = await client.sendmail(login, to, content)
                        held = "held for approval" in reply
                        if held and self_complete and kind == "new, untagged":
                            # The sender sees the notice and records the consent they had
                            # (the console's "Complete the details"): released, no manager.
                            qid = reply.split("Queued as ")[1].split(",")[0]
                            done = {"consent": "obtained"}
                            _, still = complete(gw.gateway.holds, qid, login, done, judge)
                            held = bool(still)
                        if held:
                            holds[(day, manager)] += 1
                            reasons[kind] += 1
                        else:  # it left: the agency may answer, and staff reply to that
                            threads.append((str(msg["Message-ID"]), org))
                finally:
                    client.close()
        managers = sorted({m for _, m in staff})
        per_day = [holds[(d, m)] for d in range(args.days) for m in managers]
        return Month(
            sum(kinds.values()),
            sum(holds.values()),
            sum(per_day) / len(per_day),
            max(per_day),
            reasons,
            kinds,
        )
    finally:
        await gw.gateway.stop()


def _people(gw: RunningGateway, count: int) -> list[tuple[str, str]]:
    managers = [f"manager{i}@c4f.example" for i in range((count + 4) // 5)]
    for m in managers:
        gw.add_staff(m, role="manager")
    staff = []
    for i in range(count):
        login, manager = f"staff{i:02d}@c4f.example", managers[i // 5]
        gw.add_staff(login, managers=[manager])
        staff.append((login, manager))
    return staff


def _contacts(gw: RunningGateway) -> dict[str, list[str]]:
    repo = ContactRepository(gw.gateway.store, keyring=keyring_for(gw.settings))
    out: dict[str, list[str]] = {}
    for org in ORGS:
        out[org] = [f"worker{n}@{org}.example" for n in (1, 2)]
        for address in out[org]:
            repo.add(approved(address, address.split("@")[0], org.capitalize()), "Bench Admin")
    return out


def _next(
    rng: random.Random,
    login: str,
    threads: list[tuple[str, str]],
    contacts: dict[str, list[str]],
    serial: int,
) -> tuple[EmailMessage, str, str]:
    roll = rng.random()
    own_id = f"<m{serial}@c4f.example>"
    if roll < 0.70 and threads:
        first, org = rng.choice(threads[-400:])  # conversations of the last weeks
        to = rng.choice(contacts[org])
        agency = f"<a{serial}@mail.{org}.example>"
        msg = message(login, [to], subject="Re: Contact arrangements")
        msg["In-Reply-To"] = agency
        msg["References"] = f"{first} {agency}"
        kind = "reply in a conversation"
    else:
        org = rng.choice(ORGS)
        to = rng.choice(contacts[org])
        if roll < 0.90:
            tags, kind = tagged(rng)
        else:
            tags, kind = "", "new, untagged"
        msg = message(login, [to], subject=f"{tags}Contact arrangements")
    msg["Message-ID"] = own_id
    return msg, kind, org


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--days", type=int, default=20)
    args.add_argument("--staff", type=int, default=20)
    args.add_argument("--per-day", type=int, default=6)
    args.add_argument("--seed", type=int, default=1)
    opts = args.parse_args()
    configure("console", "error")
    results: dict[str, Month] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, inherit, self_complete in (
            ("without (baseline)", False, False),
            ("with thread inheritance", True, False),
            ("with thread inheritance and staff completing their own", True, True),
        ):
            folder = Path(tmp) / str(len(results))
            results[label] = asyncio.run(month(folder, opts, inherit, self_complete))
    base = results["without (baseline)"]
    print(
        f"{opts.days} working days, {opts.staff} staff, {opts.per_day} messages each a day, "
        f"{(opts.staff + 4) // 5} managers; {base.messages} messages per run"
    )
    for label, r in results.items():
        ratio = f" ({r.mean / base.mean:.2f} x baseline)" if base.mean else ""
        print(
            f"\n{label}: {r.held} held; per manager per day: mean {r.mean:.1f}, max {r.most}{ratio}"
        )
        for kind, n in sorted(r.reasons.items(), key=lambda x: -x[1]):
            print(f"  {n:5d} held of {r.kinds[kind]:5d}  {kind}")


if __name__ == "__main__":
    main()
