"""``c4f-gateway upgrade``: bring an older database up to this gateway's schema.

``serve``, the console and every other command refuse a database whose schema version is
not theirs (:mod:`gateway.schema_version`), and point here. An older database is not
upgraded by ``serve`` on its own: the steps seal data in place and drop the clear
tables, so the previous release can no longer open it; the operator chooses when, with
the gateway stopped, and where the backup goes. Upgrade takes the database's lock
exclusively (refusing while serve, the console or a command has it open), takes a backup
(:mod:`gateway.cli.backup`), then runs the numbered steps of :mod:`gateway.schema`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from gateway.cli.backup import take
from gateway.cli.common import add_config_arg, existing_database, load_settings, logs_to_stderr
from gateway.crypto import Keyring
from gateway.schema import Keys, Step, pending, upgrade
from gateway.schema_version import CURRENT
from gateway.settings.register import register_settings
from gateway.store import Store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "upgrade",
        help="back up, then migrate an older database to this version's schema",
        description=(
            "Migrate the database to this gateway's schema version, after taking a backup "
            "(as 'c4f-gateway backup'). Stop serve and the console first: upgrade refuses "
            "while any gateway process has the database open. Run it again if it is "
            "interrupted: each step is safe to repeat."
        ),
    )
    add_config_arg(p)
    p.add_argument(
        "--backup-to",
        type=Path,
        metavar="DIR",
        help="new folder for the backup (default: DATABASE.before-upgrade-TIME next to it)",
    )
    p.add_argument(
        "--keys-to", type=Path, metavar="DIR", help="also copy the key files (kept apart)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logs_to_stderr()
    settings = load_settings(args)
    db = existing_database(settings)
    keys = Keys(
        spool=Keyring.load(settings.storage.spool_key_file),
        register=Keyring.load(register_settings(settings).key_file),
    )
    # A current database needs nothing, even while serve runs (make run, scripts).
    look = Store(db, check_version=False)
    try:
        if not pending(look.version):  # refuses a newer database
            print(f"{db} is at schema version {CURRENT}: nothing to do.")
            return 0
    finally:
        look.close()
    store = Store(db, check_version=False, exclusive=True)
    try:
        before = store.version
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        to = args.backup_to or db.with_name(f"{db.name}.before-upgrade-{stamp}")
        take(store, settings, to, args.keys_to)
        print(f"Backed up {db} (schema version {before}) to {to}.")

        def done(step: Step) -> None:
            print(f"Step {step.number}: {step.what}: done.")

        after = upgrade(store, keys, done)
    finally:
        store.close()
    print(f"Upgraded {db} from schema version {before} to {after}.")
    return 0
