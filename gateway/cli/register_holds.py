"""``c4f-gateway register hold-family`` and ``release-family``: family-level retention holds.

Policy, "Storage of information": information about a family is disposed of after three
years unless a safeguarding or child-protection issue arose or anybody was injured. A
family hold keeps every record with that family reference, including records tagged or
linked to the family later, until it is released; it has a category, a reason, who set
it and a review date (a year on by default), after which `register list
--hold-review-due`, the console and the managers' daily reminder list it.
"""

from __future__ import annotations

import argparse

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg
from gateway.cli.register_open import add_staff_by, open_register_by
from gateway.register.family_hold import (
    hold_family,
    placed_words,
    release_family,
    released_words,
)
from gateway.register.ledger import RegisterError
from gateway.register.retention import CATEGORIES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``register hold-family`` and ``register release-family``, hooked into ``register``."""
    hold = sub.add_parser(
        "hold-family",
        help="keep every record of a family beyond the three-year retention period",
        description="Place a retention hold on a whole family: every register record with "
        "this family reference, now or tagged later, is kept by `register purge` until the "
        "hold is released. Prints the hold's register number.",
    )
    hold.add_argument("family", metavar="REF", help="the family's reference")
    hold.add_argument("--category", required=True, choices=CATEGORIES, help="why it is kept")
    hold.add_argument("--reason", required=True, metavar="TEXT", help="the reason, in words")
    hold.add_argument(
        "--review-on", metavar="YYYY-MM-DD", help="when it is reviewed (default: in a year)"
    )
    add_staff_by(hold, "who places the hold")
    add_config_arg(hold)
    hold.set_defaults(func=cmd_hold_family)

    release = sub.add_parser(
        "release-family",
        help="release a family's retention hold",
        description="Release the family hold standing on a family: its records are again "
        "purged three years after they were made, unless a hold of their own keeps them.",
    )
    release.add_argument("family", metavar="REF", help="the family's reference")
    release.add_argument("--reason", required=True, metavar="TEXT", help="why it is released")
    add_staff_by(release, "who releases it")
    add_config_arg(release)
    release.set_defaults(func=cmd_release_family)


def cmd_hold_family(args: argparse.Namespace) -> int:
    register, by = open_register_by(args)
    try:
        seq = hold_family(
            register,
            args.family,
            actor=by,
            category=args.category,
            reason=args.reason,
            review_on=args.review_on,
        )
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    print(placed_words(args.family, args.category, seq))
    return 0


def cmd_release_family(args: argparse.Namespace) -> int:
    register, by = open_register_by(args)
    try:
        seq = release_family(register, args.family, actor=by, reason=args.reason)
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    print(released_words(args.family, seq))
    return 0
