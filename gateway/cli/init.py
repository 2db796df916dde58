"""``c4f-gateway init``: a complete working setup in one folder, or for a given config."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from gateway.cli import CLIError
from gateway.crypto import Keyring
from gateway.directory.staff import StaffDirectory
from gateway.register.ledger import Register
from gateway.settings import Settings, load
from gateway.settings.register import register_settings
from gateway.store import Store
from gateway.tls import write_dev_certificate

DEV_CONFIG = """\
# c4f-gateway configuration written by 'c4f-gateway init'.
# Every key is explained in config/gateway.example.toml. Paths are relative to this file.
hostname = "localhost"

[organisation]
name = "C4F - Child Contact Centre (dev)"
domains = ["{domain}"]

[listen]
starttls = ["127.0.0.1:{port}"]
implicit_tls = ["127.0.0.1:{implicit_port}"]

[tls]
cert_file = "tls/cert.pem"
key_file = "tls/key.pem"

[storage]
database = "gateway.db"
spool_key_file = "keys/spool.key"

[register]
key_file = "keys/register.key"
mac_key_file = "keys/register-mac.key"
checkpoint_dir = "register-checkpoints"

[delivery]
# Dev: each relayed message is written as a file into delivered/new/ instead of being
# sent to a smarthost. Production uses transport = "smtp" and an [upstream] section.
transport = "maildir"
maildir = "delivered"

[pipeline]
filters = ["sender", "fax_route", "contacts", "disclosure", "media", "approval", "disclaimer"]

[log]
format = "console"
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="write a complete dev setup (config, TLS certificate, keys, database) into a folder",
        description=(
            "Create DIR/gateway.toml, a self-signed TLS certificate for localhost, the spool "
            "and register keys (mode 0600), the SQLite database and a local delivery folder, "
            "so that 'c4f-gateway serve --config DIR/gateway.toml' runs at once. Key files "
            "already in DIR are kept. With --config instead of --dir, create what an "
            "existing config (such as deploy/examples/office365.toml) names."
        ),
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--dir",
        type=Path,
        help="folder to set up with a development config (it must not hold a gateway.toml yet)",
    )
    where.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="an existing config (e.g. from deploy/examples/): create the keys, database, "
        "folders and a placeholder self-signed certificate wherever it says, skipping any "
        "that exist; run it as the user the gateway runs as",
    )
    p.add_argument("--port", type=int, default=1587, help="STARTTLS submission port (1587)")
    p.add_argument(
        "--implicit-port", type=int, default=1465, help="implicit-TLS submission port (1465)"
    )
    p.add_argument("--domain", default="c4f.example", help="the centre's mail domain")
    p.add_argument(
        "--demo",
        action="store_true",
        help="also create a demo staff account and print how to send a test message",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.config is not None:
        return _for_config(args.config)
    d: Path = args.dir
    config = d / "gateway.toml"
    if config.exists():
        raise CLIError(f"{config} already exists; choose another --dir or remove it")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    config.write_text(
        DEV_CONFIG.format(domain=args.domain, port=args.port, implicit_port=args.implicit_port),
        encoding="utf-8",
    )
    settings = load(config)
    kept = create_missing(settings, ["localhost", "127.0.0.1"])
    store = Store(settings.storage.database)
    staff = StaffDirectory(store, cost=settings.auth.password_hash_cost)
    print(f"Created {config} (with TLS certificate, keys and database in {d}).")
    for path in kept:
        print(f"Kept the existing {path}")
    if args.demo:
        login = f"demo@{args.domain}"
        password = demo_password()
        staff.add(login, password)
        print(
            f"\nDemo staff account: {login}\nPassword: {password}\n\n"
            "Send a test message (in another terminal) with:\n"
            f"  swaks --server 127.0.0.1:{args.port} --tls "
            f"--auth PLAIN --auth-user {login} --auth-password '{password}' "
            f"--from {login} --to colleague@{args.domain}\n\n"
            f"The relayed message appears as a file in {settings.delivery.maildir}/new/\n"
        )
    store.close()
    return 0


def demo_password() -> str:
    """A random password for the demo account that never starts with "-": the command
    printed for it (swaks ``--auth-password '-x...'``) would read it as an option."""
    while True:
        password = secrets.token_urlsafe(12)
        if not password.startswith("-"):
            return password


def create_missing(settings: Settings, names: list[str]) -> list[Path]:
    """Create the keys, certificate and folders ``settings`` names; returns the kept ones.

    Keys that exist are kept, never replaced: messages and register entries sealed with
    them would otherwise be unreadable.
    """
    kept = []
    if settings.tls.cert_file.exists() or settings.tls.key_file.exists():
        kept.append(settings.tls.cert_file)
    else:
        write_dev_certificate(settings.tls.cert_file, settings.tls.key_file, names)
    if settings.storage.spool_key_file.exists():
        kept.append(settings.storage.spool_key_file)
    else:
        Keyring.create(settings.storage.spool_key_file)
    register = register_settings(settings)
    created = Register.create_keys(register)
    kept += [p for p in (register.key_file, register.mac_key_file) if p not in created]
    folders = [settings.storage.database.parent, register.checkpoint_dir]
    if settings.delivery.transport == "maildir":
        folders.append(settings.delivery.maildir)
    for folder in folders:
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    return kept


def _for_config(config: Path) -> int:
    if not config.exists():
        raise CLIError(f"{config}: no such config file")
    settings = load(config)
    had_cert = settings.tls.cert_file.exists() or settings.tls.key_file.exists()
    kept = create_missing(settings, [settings.hostname])
    Store(settings.storage.database).close()
    print(f"Set up the keys, database and folders {config} names.")
    for path in kept:
        print(f"Kept the existing {path}")
    if not had_cert:
        print(
            f"Wrote a self-signed certificate for {settings.hostname} to "
            f"{settings.tls.cert_file}: replace it (and {settings.tls.key_file}) with one "
            "staff mail clients trust."
        )
    return 0
