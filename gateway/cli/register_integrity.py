"""``c4f-gateway register verify``, ``purge`` and ``checkpoint``: the register's
integrity (the chain and its signed checkpoints) and its retention (entries past the
retention period destroyed, with the change history of removed contacts)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, whoami
from gateway.cli.progress import add_quiet_arg, progress_for
from gateway.cli.register_open import open_register, settings_of
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_retention import purge_removed_history
from gateway.register.codec import MacKey
from gateway.register.formats import local_time
from gateway.register.ledger import RegisterError
from gateway.register.purge import purge
from gateway.register.verify import verify


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``register verify``, ``purge`` and ``checkpoint``, hooked into ``register``."""
    ver = sub.add_parser("verify", help="check the chain and the checkpoints")
    add_config_arg(ver)
    ver.add_argument(
        "--mac-key-file",
        type=Path,
        help="an earlier MAC key (kept offline) to check older entries too",
    )
    add_quiet_arg(ver)
    ver.set_defaults(func=cmd_verify)

    pg = sub.add_parser("purge", help="destroy entries past the retention period")
    add_config_arg(pg)
    pg.add_argument("--dry-run", action="store_true", help="only say what would be purged")
    pg.add_argument("--entry", type=int, help="purge this record now, whatever its age")
    pg.add_argument(
        "--by", default=whoami(), metavar="NAME", help="who purges, for the register (default: you)"
    )
    add_quiet_arg(pg)
    pg.set_defaults(func=cmd_purge)

    cp = sub.add_parser("checkpoint", help="write today's signed head file")
    add_config_arg(cp)
    cp.set_defaults(func=cmd_checkpoint)


def cmd_verify(args: argparse.Namespace) -> int:
    _, rs, store = settings_of(args)
    mac_key = MacKey.load(args.mac_key_file or rs.mac_key_file)
    with progress_for(args, "register verify", "entries") as progress:
        result = verify(store, mac_key, rs.checkpoint_dir, time.time(), progress)
    for note in result.notes:
        print(f"Note: {note}")
    if not result.ok:
        first = result.first
        assert first is not None
        print(f"REGISTER FAILED VERIFICATION: {first.text}")
        for p in result.problems[1:20]:
            print(f"  also: {p.text}")
        if len(result.problems) > 20:
            print(f"  ... and {len(result.problems) - 20} more problems")
        return 1
    if not result.proven:
        # REG-11: an intact chain says nothing about entries cut off its end.
        print(
            "REGISTER NOT VERIFIED: no checkpoint: truncation cannot be detected "
            f"(none in {rs.checkpoint_dir}; `serve` writes them, or run "
            "`c4f-gateway register checkpoint`)"
        )
        print(f"The chain itself is intact: {_entries(result.count)}.")
        return 1
    print(
        f"Register verified: {result.count} entries, chain intact, "
        f"{result.checkpoints} checkpoint(s) agree."
    )
    tail = result.uncheckpointed
    if tail:
        # REG-12: the newest entries are protected only from the next checkpoint on.
        print(
            f"Note: not yet checkpointed: {_entries(tail)} "
            f"({result.count - tail + 1} to {result.count}): a cut-off among them cannot be "
            "detected until the next checkpoint"
        )
    return 0


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def cmd_purge(args: argparse.Namespace) -> int:
    register = open_register(args)
    try:
        with progress_for(args, "register purge: reading", "entries") as progress:
            result = purge(
                register, actor=args.by, dry_run=args.dry_run, only=args.entry, progress=progress
            )
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    verb = "Would purge" if result.dry_run else "Purged"
    print(
        f"{verb} {len(result.records)} record(s) ({len(result.entries)} entries) older "
        f"than {local_time(result.cutoff)}."
    )
    if result.kept_on_hold:
        print(
            f"Kept {len(result.kept_on_hold)} record(s) under a retention hold: "
            + ", ".join(map(str, result.kept_on_hold))
        )
        for why, seqs in sorted(result.kept_why.items()):
            print(f"  {why}: {len(seqs)} record(s): {', '.join(map(str, seqs))}")
    if result.entry:
        print(f"The purge is recorded as entry {result.entry}.")
    if args.entry is None:  # removed contacts' change history goes with the same retention
        contacts = ContactRepository(register.store, keyring=register.keyring)
        gone = purge_removed_history(contacts, register.retention_days, dry_run=args.dry_run)
        if gone:
            print(f"{verb} the change history of {len(gone)} removed contact(s).")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    try:
        path = open_register(args).checkpoint()
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    print(f"Checkpoint written: {path}")
    return 0
