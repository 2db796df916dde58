"""The ``c4f-gateway`` command.

Each sub-command lives in its own module in this package and exposes
``add_parser(subparsers)``, which registers the command and sets ``func(args) -> int``
as its handler; a command with many actions keeps groups of them in modules named after
it (``contacts_show``, ``contacts_review``, ``contacts_files``, ``register_holds``, ...).
Errors a user can fix are raised as :class:`CLIError` and printed as
one line on stderr with exit status 2; configuration errors exit with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

from gateway.errors import ConfigError
from gateway.schema_version import DatabaseRefused

# One line per sub-command module, in the order --help lists them.
COMMANDS = [
    "init",
    "serve",
    "check_config",
    "health",
    "backup",
    "restore",
    "upgrade",
    "staff",
    "contacts",
    "queue",
    "held",
    "register",
    "keys",
    "disclaimer",
    "web",
]


class CLIError(Exception):
    """A mistake the user can fix: printed without a traceback."""


def version() -> str:
    """The installed distribution's version (what the wheel or ``pip install`` recorded)."""
    try:
        return importlib.metadata.version("c4f-gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c4f-gateway",
        description=(
            "Secure outbound email gateway for child contact centres. Staff mail clients "
            "submit through it; it relays only to approved contacts, over verified TLS, "
            "with the mandatory confidentiality notice, and records every disclosure."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"c4f-gateway {version()}",
        help="print the installed version and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"gateway.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CLIError as exc:
        print(f"c4f-gateway {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"c4f-gateway {args.command}: config error: {exc}", file=sys.stderr)
        return 1
    except DatabaseRefused as exc:
        print(f"c4f-gateway {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
