"""``c4f-gateway register annotate``: a follow-up to an entry: whether the person was
informed, a reason, a concern, corrected details, third-party parts, a retention hold.
Each is an entry of its own, chained after the one it follows up."""

from __future__ import annotations

import argparse

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, whoami
from gateway.cli.register_open import open_register
from gateway.register.ledger import RegisterError
from gateway.register.record import CONSENT_VALUES, THIRD_PARTY_FIELDS
from gateway.register.retention import CATEGORIES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``register annotate``, hooked into ``register``'s own sub-commands."""
    ann = sub.add_parser("annotate", help="add a follow-up to an entry")
    add_config_arg(ann)
    ann.add_argument("entry", type=int, help="the entry's number, as `register list` shows it")
    ann.add_argument(
        "--informed",
        choices=("yes", "no"),
        help="was the person informed (yes needs --informed-on, no --informed-reason)",
    )
    ann.add_argument(
        "--informed-on", "--on", dest="informed_on", metavar="DATE", help="when (YYYY-MM-DD)"
    )
    ann.add_argument("--informed-reason", metavar="TEXT", help="why the person was not informed")
    ann.add_argument(
        "--reason",
        help="why it was shared without consent; with --retention-hold or "
        "--release-retention-hold: why the hold is placed or released",
    )
    ann.add_argument("--concern", help="a concern discussed with the line manager")
    ann.add_argument(
        "--consent", choices=CONSENT_VALUES[:3], help="the family's consent to this transfer"
    )
    ann.add_argument("--family", metavar="REF", help="the family's reference")
    ann.add_argument("--nature", help="the nature of the information shared")
    ann.add_argument(
        "--safeguarding",
        choices=("yes", "no"),
        help="a safeguarding or child-protection concern (withheld from a client copy)",
    )
    ann.add_argument(
        "--third-party",
        choices=("yes", "no"),
        help="information about or from another person: withheld from a client copy",
    )
    ann.add_argument(
        "--third-party-field",
        action="append",
        choices=(*THIRD_PARTY_FIELDS, "none"),
        metavar="FIELD",
        help="only this part is about another person (repeat for several; 'none' shows every "
        f"part again): {', '.join(THIRD_PARTY_FIELDS)}",
    )
    hold = ann.add_mutually_exclusive_group()
    hold.add_argument(
        "--retention-hold",
        choices=CATEGORIES,
        metavar="CATEGORY",
        help="keep this record (and its family's) beyond the three-year retention period: "
        f"{', '.join(CATEGORIES)}; needs --reason",
    )
    hold.add_argument(
        "--release-retention-hold", action="store_true", help="release its hold (needs --reason)"
    )
    ann.add_argument(
        "--review-on",
        metavar="DATE",
        help="with --retention-hold: when the hold is reviewed (default: in a year)",
    )
    ann.add_argument("--by", default=whoami(), help="who records this (default: you)")
    ann.set_defaults(func=cmd_annotate)


def cmd_annotate(args: argparse.Namespace) -> int:
    hold = True if args.retention_hold else (False if args.release_retention_hold else None)
    # With a hold placed or released, --reason is the hold's reason.
    hold_reason, reason = (args.reason, None) if hold is not None else (None, args.reason)
    safeguarding = None if args.safeguarding is None else args.safeguarding == "yes"
    third_party = None if args.third_party is None else args.third_party == "yes"
    parts = args.third_party_field
    if parts and "none" in parts and len(parts) > 1:
        raise CLIError("--third-party-field none goes alone")
    third_party_fields = None if parts is None else [p for p in parts if p != "none"]
    try:
        seq = open_register(args).annotate(
            args.entry,
            args.by,
            informed=args.informed,
            informed_on=args.informed_on,
            informed_reason=args.informed_reason,
            reason=reason,
            concern=args.concern,
            consent=args.consent,
            family=args.family,
            nature=args.nature,
            safeguarding=safeguarding,
            third_party=third_party,
            third_party_fields=third_party_fields,
            hold=hold,
            hold_category=args.retention_hold,
            hold_reason=hold_reason,
            hold_review_on=args.review_on,
        )
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    print(f"Recorded follow-up {seq} to entry {args.entry}.")
    return 0
