"""``c4f-gateway keys``: rotate, list, re-seal and retire the gateway's keys.

Three keys can rotate. The spool key seals the queue, held messages' details, approval
proofs, console sessions and TOTP secrets; the register master key wraps each register
entry's data key and seals the contacts; the register MAC key signs the chain (see
:mod:`gateway.register.codec` for what rotating it means). ``rotate`` puts a new key in
front: it seals from then on and the old ones still open. ``reseal`` seals what the old
keys sealed again under the current one, in short transactions, while ``serve`` runs.
``retire`` removes an old key, and refuses while anything still needs it. ``list`` shows
what needs each key as counts, never contents. Running processes read a key file again
when it changes (:class:`gateway.crypto.Keyring`), so none needs a restart.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from gateway.cli import CLIError
from gateway.cli import keys_tables as tables
from gateway.cli.common import add_config_arg, load_settings, logs_to_stderr, whoami
from gateway.cli.common import table as render
from gateway.cli.keys_tables import SEALING, Keys, Row
from gateway.crypto import Keyring
from gateway.errors import ConfigError
from gateway.register import rekey
from gateway.register.codec import MacKey
from gateway.register.ledger import RegisterError

SETTLE = 60.0  # seconds a key file must stay unchanged before one of its keys retires


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "keys",
        help="rotate, list, re-seal and retire the spool and register keys",
        description=(
            "Key rotation: `rotate` adds a new key that seals (or signs) from now on and "
            "keeps the old ones for opening; `reseal` seals old rows again under the current "
            "key (safe while serve runs); `retire` removes an old key once nothing needs it; "
            "`list` shows every key and what still needs it (counts only). Back up the key "
            "files after each change (see the README, 'Key rotation')."
        ),
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = sub.add_parser(
        "list",
        help="every key, which is current, and what still needs it",
        description=(
            "One line per key: spool and register keys by id, MAC keys as mac-eN (N: the "
            "first epoch it signs). NEEDED BY counts the rows each key sealed (or the "
            "register entries and checkpoints each MAC key signed); nothing is decrypted. "
            "A key marked 'missing' sealed rows but is in no key file."
        ),
    )
    ls.set_defaults(func=cmd_list)

    rot = sub.add_parser(
        "rotate",
        help="add a new current key (the old ones keep opening)",
        description=(
            "spool, register: a new random key is put first in the key file; it seals from "
            "now on, the old ones still open. mac: a checkpoint is signed with the outgoing "
            "key, then the next epoch starts with a fresh random key (not derived from the "
            "old one, which stays in the file for verifying). Running processes pick the "
            "change up by themselves. Back up the key file afterwards."
        ),
    )
    rot.add_argument("which", choices=(*SEALING, "mac"), help="the spool, register or MAC key")
    rot.set_defaults(func=cmd_rotate)

    res = sub.add_parser(
        "reseal",
        help="seal what older keys sealed again, in batches",
        description=(
            "Seal every row an older key sealed again under the current key, in its place "
            "(the same associated data), renewing the keyed lookup hash beside it; the "
            "register's entry keys are re-wrapped and recorded so that verify still passes. "
            "Short transactions: safe while serve and web run. Exit 1 if a row does not "
            "open (it keeps the old key needed)."
        ),
    )
    res.add_argument(
        "which", choices=SEALING, help="the key whose rows are sealed again with its newest version"
    )
    res.add_argument(
        "--batch", type=int, default=tables.BATCH, help="rows per transaction (default 200)"
    )
    res.set_defaults(func=cmd_reseal)

    ret = sub.add_parser(
        "retire",
        help="remove an old key; refused while anything needs it",
        description=(
            "Remove an old key from its key file. Refused for the current key, while any "
            "row still needs it (run reseal first), and until its key file has been "
            "unchanged for a minute after a rotation. A MAC key is refused while register "
            "entries or checkpoints of its epochs exist: verify needs it."
        ),
    )
    ret.add_argument("key_id", metavar="KEY_ID", help="as `keys list` shows it")
    ret.set_defaults(func=cmd_retire)

    add_config_arg(ls)
    for s in (rot, res, ret):
        add_config_arg(s)
        s.add_argument(
            "--by", default=whoami(), metavar="NAME", help="who does it (for the register)"
        )


def _needs_text(needs: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" if n else name for name, n in needs.items()) or "nothing"


def _open(args: argparse.Namespace) -> Keys:
    logs_to_stderr()
    try:
        return Keys(load_settings(args))
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    keys = _open(args)
    try:
        rows = keys.rows()
    finally:
        keys.close()
    print(
        render(
            ["KEY", "ID", "STATE", "NEEDED BY"],
            [[r.which, r.key_id, r.state, _needs_text(r.needs)] for r in rows],
        )
    )
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    keys = _open(args)
    try:
        if args.which == "mac":
            return _rotate_mac(keys, args.by)
        path = keys.settings.storage.spool_key_file if args.which == "spool" else keys.rs.key_file
        new = Keyring.rotate(path)
        keys.audit(args.by, "key rotated", {"key": args.which, "id": new})
        print(f"{args.which} key rotated: {new} seals from now on ({path})")
        print(f"next: back up {path}; then `c4f-gateway keys reseal {args.which}`")
        return 0
    finally:
        keys.close()


def _rotate_mac(keys: Keys, actor: str) -> int:
    reg = keys.register
    try:
        reg.checkpoint()  # closes the outgoing key's epochs, signed with that key
    except RegisterError as exc:
        raise CLIError(f"{exc}; the MAC key was not rotated") from None
    new = MacKey.load(keys.rs.mac_key_file).rotated()
    new.save(keys.rs.mac_key_file)
    reg.mac_key = new
    # Written under the new epoch: a running serve sees it and reads the key file again.
    keys.audit(actor, "key rotated", {"key": "mac", "epoch": new.epoch})
    reg.checkpoint()
    print(f"register MAC key rotated: epoch {new.epoch} (mac-e{new.epoch}) signs from now on")
    kept = "dropped at the next daily evolution" if keys.rs.evolve_mac_key else "kept"
    print(f"the earlier key is {kept} in {keys.rs.mac_key_file}; back the file up now")
    return 0


def cmd_reseal(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CLIError("--batch: must be at least 1")
    keys = _open(args)
    try:
        ring = keys.keyring(args.which)
        columns = tables.SPOOL if args.which == "spool" else tables.REGISTER
        report: list[list[str]] = []
        unreadable = indexed = 0
        if args.which == "register":
            result = rekey.reseal(keys.register, actor=args.by, batch=args.batch)
            report.append(["register entries", str(result.resealed), str(len(result.unreadable))])
            unreadable += len(result.unreadable)
            # The index's keyed hashes and sealed names, made again under the current key.
            indexed = keys.register.rebuild_index()
        for col in columns:
            done, bad = tables.reseal(keys.store, ring, col, args.batch)
            report.append([col.name, str(done), str(bad)])
            unreadable += bad
        # Old ciphertext may linger in the write-ahead log until it is emptied.
        keys.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
        total = sum(int(r[1]) for r in report)
        keys.audit(
            args.by,
            "keys resealed",
            {"key": args.which, "id": ring.current_id, "rows": total, "unreadable": unreadable},
        )
    finally:
        keys.close()
    print(render(["WHAT", "RESEALED", "UNREADABLE"], report))
    print(f"{args.which}: {total} re-sealed under {ring.current_id}")
    if args.which == "register":
        print(f"register index: {indexed} records indexed again under {ring.current_id}")
    if unreadable:
        print(f"{unreadable} did not open (altered or damaged): they keep the old key needed")
        return 1
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    keys = _open(args)
    try:
        for row in keys.rows():
            if row.key_id == args.key_id and row.state != "missing":
                return _retire(keys, row, args.by)
    finally:
        keys.close()
    raise CLIError(f"no key {args.key_id} in any key file (see `c4f-gateway keys list`)")


def _retire(keys: Keys, row: Row, actor: str) -> int:
    if row.state == "current":
        raise CLIError(f"{row.key_id} is the current {row.which} key: rotate first")
    if row.which != "mac":
        path = keys.settings.storage.spool_key_file if row.which == "spool" else keys.rs.key_file
        age = time.time() - path.stat().st_mtime
        if age < SETTLE:
            # A value sealed just before the rotation may still be waiting for the database
            # (a write waits at most the store's 30 s busy timeout): it must land, and be
            # counted or re-sealed, before its key can go.
            raise CLIError(
                f"{path} changed {age:.0f} s ago; wait {SETTLE - age:.0f} s so that nothing "
                f"sealed under {row.key_id} is still on its way to the database, run "
                f"`c4f-gateway keys reseal {row.which}`, then retire"
            )
    # Counted again inside a write transaction, so nothing is sealed or re-sealed under
    # the key between the count and the key file's change.
    with keys.store.transaction():
        if row.which == "mac":
            mac = MacKey.load(keys.rs.mac_key_file)
            start = int(row.key_id.removeprefix("mac-e"))
            needs = next(n for s, _, n in keys.mac_needs(mac) if s == start)
            needs = Counter({k: v for k, v in needs.items() if v})
        else:
            needs = keys.needs(row.which).get(row.key_id, Counter())
        if needs:
            hint = (
                "the register keeps them (verify needs this key)"
                if row.which == "mac"
                else f"run `c4f-gateway keys reseal {row.which}` first"
            )
            if needs[tables.LINKS]:
                hint += (
                    "; an enrolment link needs it until it is used or expires (24 hours): "
                    "wait, or issue that person a new link (`c4f-gateway web enrol-link`)"
                )
            raise CLIError(f"{row.key_id} is still needed by {_needs_text(needs)}: {hint}")
        if row.which == "mac":
            lines = [(s, k) for s, k in mac.lines() if s != start]
            MacKey(lines[0][0], lines[0][1], tuple(lines[1:])).save(keys.rs.mac_key_file)
        else:
            Keyring.retire(path, row.key_id)
    keys.audit(actor, "key retired", {"key": row.which, "id": row.key_id})
    print(f"{row.which} key {row.key_id} retired; back up the key file now")
    return 0
