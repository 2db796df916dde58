"""Opening the disclosure register for a ``c4f-gateway register`` command: the config's
settings, its database (which must exist) and the register on it; who runs the command,
and the staff account a ``--by`` names; where a report goes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.cli import CLIError
from gateway.cli.common import existing_database, load_settings, logs_to_stderr
from gateway.directory.staff import StaffDirectory
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.settings.register import RegisterSettings, register_settings
from gateway.store import Store


def staff_login(store: Store, login: str, option: str = "--by") -> str:
    """The staff account ``login`` names (its login as the directory keeps it), for a
    command that records who did something; a login that names none is a one-line error."""
    member = StaffDirectory(store).get(login)
    if member is None:
        raise CLIError(f"{option}: {login} is not a staff account (see `staff list`)")
    return member.login


def settings_of(args: argparse.Namespace) -> tuple[Settings, RegisterSettings, Store]:
    """The config's settings, the register's, and the store on its existing database."""
    logs_to_stderr()  # the answer goes to stdout, without info events in it
    settings = load_settings(args)
    return settings, register_settings(settings), Store(existing_database(settings))


def open_register(args: argparse.Namespace) -> Register:
    _, rs, store = settings_of(args)
    return Register.from_settings(store, rs)


def add_staff_by(parser: argparse.ArgumentParser, who: str) -> None:
    """``--by LOGIN``, required: the staff account that :func:`open_register_by` checks."""
    parser.add_argument("--by", required=True, metavar="LOGIN", help=f"{who} (a staff login)")


def open_register_by(args: argparse.Namespace) -> tuple[Register, str]:
    """The register, and the staff account ``--by`` names (an error if it names none)."""
    register = open_register(args)
    return register, staff_login(register.store, args.by)


def write_output(text: str, output: Path | None) -> None:
    """``text`` on stdout, or into ``output`` readable by its owner only."""
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8", newline="")
        output.chmod(0o600)  # it holds personal data
