"""Cost of the recipient checks per RCPT with 5,000 approved contacts.

Runs the real fax_route and contacts filters (real SQLite file, real contact list) and
prints the time per RCPT next to a baseline measured in the same run: a plain dict lookup
of the lower-cased address, the least any approved-list check could cost. The target is
"well under a millisecond" per approved recipient.

    .venv/bin/python bench/recipient_bench.py [--contacts 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import io
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from filters import contacts as contacts_filter
from filters import fax_route
from gateway.directory.addresses import normalise
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_csv import CSV_COLUMNS
from gateway.directory.contacts_import import import_csv
from gateway.directory.contacts_sealed import keyring_for
from gateway.envelope import Session, Transaction
from gateway.errors import Refused
from gateway.logging import configure
from gateway.pipeline import FilterContext, Pipeline
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.settings.register import register_settings
from gateway.store import Store

FIRST = [
    "jane",
    "sam",
    "alex",
    "mary",
    "omar",
    "priya",
    "tom",
    "lucy",
    "ade",
    "chen",
    "ruth",
    "ivan",
    "zoe",
    "raj",
    "kim",
]
LAST = [
    "whitaker",
    "patel",
    "jones",
    "smith",
    "okafor",
    "khan",
    "brown",
    "nowak",
    "evans",
    "li",
    "price",
    "hughes",
]
SUFFIX = ["gov.uk", "org.uk", "nhs.uk", "co.uk", "police.uk", "com"]


def contact_csv(n: int, rng: random.Random) -> tuple[str, list[str]]:
    orgs = [
        f"{rng.choice(['north', 'south', 'east', 'west', 'city', 'county'])}"
        f"{rng.choice(['', '-'])}{rng.choice(['family', 'care', 'court', 'health', 'youth'])}"
        f"{i}.{rng.choice(SUFFIX)}"
        for i in range(n // 5)
    ]
    out = io.StringIO()
    w = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    w.writeheader()
    addresses: list[str] = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        address = f"{first}.{last}{i}@{orgs[i % len(orgs)]}"
        addresses.append(address)
        w.writerow(
            {
                "kind": "address",
                "address": address,
                "display_name": f"{first} {last}",
                "organisation": "Org",
                "role": "",
                "approved_by": "bench",
                "approved_on": "2026-01-01",
                "verified_how": "bench",
                "review_due": "2099-01-01",
                "notes": "",
                "unusual": "",
                "not_fax_by": "",
                "not_fax_on": "",
            }
        )
    return out.getvalue(), addresses


async def per_call(
    fn: Callable[[str], Awaitable[None]], addresses: list[str], rounds: int
) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for a in addresses:
            await fn(a)
        best = min(best, (time.perf_counter() - start) / len(addresses))
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure("console", "error")  # refusals log at info; keep them out of the timing
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "gateway.db")
        # Contacts are sealed with the register's master key, found through the settings.
        settings = dataclasses.replace(Settings(), source=Path(tmp) / "gateway.toml")
        Register.create_keys(register_settings(settings))
        repo = ContactRepository(store, keyring=keyring_for(settings))
        text, addresses = contact_csv(args.contacts, rng)
        import_csv(repo, text, "bench")
        ctx = FilterContext(settings=settings, store=store)
        pipeline = Pipeline(
            [fax_route.create({}, ctx), contacts_filter.create({"hint_limit_per_day": 10**9}, ctx)]
        )
        session = Session("127.0.0.1", "bench.test", "bench@c4f.example", True)
        tx = Transaction(session, "Q")
        await pipeline.on_rcpt(tx, addresses[0])  # first load of the snapshot
        table = {a.lower(): a for a in addresses}
        shuffled = rng.sample(addresses, len(addresses))
        unknown = [f"nobody{i}@unrelated{i}.example" for i in range(1000)]
        typos = [a.replace("@", "x@", 1) for a in shuffled[:1000]]

        async def baseline(a: str) -> None:
            if table.get(a.lower()) is None:
                raise KeyError(a)

        async def approved(a: str) -> None:
            tx.annotations.clear()
            await pipeline.on_rcpt(tx, a)

        async def refused(a: str) -> None:
            tx.annotations.clear()
            try:
                await pipeline.on_rcpt(tx, a)
            except Refused:
                return
            raise AssertionError(f"{a} was accepted")

        base = await per_call(baseline, shuffled, args.rounds)
        normalise.cache_clear()
        cold = await per_call(approved, shuffled, 1)  # every address parsed afresh
        warm = await per_call(approved, shuffled[:2000], args.rounds)  # parse cached
        none = await per_call(refused, unknown, 1)
        hint = await per_call(refused, typos, 1)
        store.close()
    print(f"recipient checks, {args.contacts} approved contacts (fax_route + contacts)")
    print(f"  baseline dict lookup           {base * 1e6:9.2f} us/RCPT")
    for label, t in (
        ("approved, address parsed", cold),
        ("approved, parse cached", warm),
        ("refused, nothing resembles", none),
        ("refused with lookalike hint", hint),
    ):
        print(f"  {label:30} {t * 1e6:9.2f} us/RCPT  ({t / base:7.0f} x baseline)")
    verdict = "well under" if cold < 0.25e-3 else "NOT well under"
    print(f"  approved recipient: {cold * 1e3:.3f} ms, {verdict} 1 ms")


if __name__ == "__main__":
    asyncio.run(main())
