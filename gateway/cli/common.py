"""Small pieces every sub-command shares."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import sys
from pathlib import Path

import structlog

from gateway import settings as settings_mod
from gateway.cli import CLIError
from gateway.logging import line_logger
from gateway.settings import Settings


def add_config_arg(parser: argparse.ArgumentParser, default: object = Path("gateway.toml")) -> None:
    """``--config PATH``; a sub-action's copy passes ``argparse.SUPPRESS`` so that it keeps a
    ``--config`` given before the action."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="PATH",
        help="the gateway's config file (default: ./gateway.toml)",
    )


def load_settings(args: argparse.Namespace) -> Settings:
    path: Path = args.config
    if not path.exists():
        raise CLIError(f"{path}: no such config file (create one with 'c4f-gateway init')")
    return settings_mod.load(path)


def existing_database(settings: Settings) -> Path:
    """The config's database, which a command other than ``init`` must find in place."""
    database = settings.storage.database
    if not database.exists():
        raise CLIError(
            f"{database}: storage.database: no such database (run `c4f-gateway init` first)"
        )
    return database


def read_password(args: argparse.Namespace, prompt: str = "Password") -> str:
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise CLIError("no terminal to ask for the password: use --password-stdin")
        password = getpass.getpass(f"{prompt}: ")
        if getpass.getpass(f"{prompt} again: ") != password:
            raise CLIError("the two passwords differ")
    if len(password) < 12:
        raise CLIError("a password needs at least 12 characters")
    return password


def local_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def logs_to_stderr() -> None:
    """For commands that print an answer: unconfigured, structlog prints every event on
    stdout, into that answer. Warnings and errors still show, on stderr."""
    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=line_logger("stderr"),
        )


def whoami() -> str:
    """The operating-system user: the default ``--by`` of commands the register records."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
