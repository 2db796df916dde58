"""``c4f-gateway register``: review, annotate, verify, purge and checkpoint the register.

list, show, export and report are the line manager's disclosure log review (policy,
"Inter-agency working"); annotate adds follow-ups (never edits); verify needs only the
MAC key, so an auditor can run it without being able to read personal fields.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gateway.cli import (
    CLIError,
    register_annotate,
    register_holds,
    register_integrity,
    register_requests,
)
from gateway.cli.common import add_config_arg
from gateway.cli.register_open import open_register, write_output
from gateway.register import formats as fmt
from gateway.register.client_copy import client_copy_text
from gateway.register.criteria import Filters
from gateway.register.export import csv_text, json_record
from gateway.register.period import parse_day
from gateway.register.record import CONSENT_VALUES, ROOT_KINDS
from gateway.register.record_text import report_text, show_text
from gateway.register.summary import summarise
from gateway.register.summary_formats import summary_csv, summary_text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("register", help="review and check the disclosure register")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = _with_filters(_common(sub.add_parser("list", help="list entries, newest last")))
    ls.add_argument("--admin", action="store_true", help="list admin actions and purges")
    ls.set_defaults(func=cmd_list)

    show = _common(sub.add_parser("show", help="one entry with its follow-ups"))
    show.add_argument("entry", type=int, help="the entry's number, as `register list` shows it")
    show.set_defaults(func=cmd_show)

    export = _with_filters(_common(sub.add_parser("export", help="CSV or JSON for review")))
    export.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="the file's format (default: csv)"
    )
    export.add_argument("--output", type=Path, help="write to this file (default: stdout)")
    export.set_defaults(func=cmd_export)

    report = _common(
        sub.add_parser(
            "report",
            help="everything shared about one family, or the figures of a period",
            description="--family REF: everything shared about one family. --summary: the "
            "register at a glance for a period (messages accepted from staff, held ones "
            "included, and refused; held now, "
            'disclosures without consent, incomplete records, "person informed" '
            "outstanding; disclosures per month by consent and per receiving organisation; "
            "held messages and time to decision; incomplete records by age).",
        )
    )
    what = report.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--family",
        metavar="REF",
        help="everything recorded about one family: messages and requests received",
    )
    what.add_argument("--summary", action="store_true", help="the figures of a period")
    report.add_argument("--since", metavar="DATE", help="--summary from this local date")
    report.add_argument("--until", metavar="DATE", help="--summary up to and including this date")
    report.add_argument(
        "--format", choices=("text", "csv"), default="text", help="--summary as text or CSV"
    )
    report.add_argument(
        "--client-copy",
        action="store_true",
        help="--family for the family itself: third-party, safeguarding and child-protection "
        "entries withheld, people's names replaced by their organisation",
    )
    report.add_argument(
        "--output", type=Path, metavar="FILE", help="write to this file (default: stdout)"
    )
    report.set_defaults(func=cmd_report)

    register_annotate.add_parser(sub)
    register_integrity.add_parser(sub)
    register_requests.add_parser(sub)
    register_holds.add_parser(sub)


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_config_arg(p)
    return p


def _with_filters(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--since", metavar="DATE", help="from this local date (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="up to and including this local date")
    p.add_argument("--staff", metavar="LOGIN", help="sent (a request: taken) by this staff login")
    p.add_argument("--recipient", metavar="TEXT", help="address contains TEXT")
    p.add_argument("--organisation", metavar="TEXT", help="organisation contains TEXT")
    p.add_argument("--family", metavar="REF", help="about this family (its reference)")
    p.add_argument(
        "--consent", choices=CONSENT_VALUES, help="only entries with this consent status"
    )
    p.add_argument("--incomplete", action="store_true", help="details still missing")
    p.add_argument("--refused", action="store_true", help="refused messages only")
    p.add_argument(
        "--retention-hold",
        action="store_true",
        help="only records kept beyond the three-year retention period",
    )
    p.add_argument(
        "--inform-due",
        action="store_true",
        help='only disclosures without consent whose "person informed" is overdue '
        "([register] inform_within_days after sending) and not yet answered",
    )
    p.add_argument(
        "--hold-review-due",
        action="store_true",
        help="only retention holds (a record's own, or a family hold) due for review",
    )
    p.add_argument(
        "--held-for-approval",
        action="store_true",
        help="only messages waiting for a line manager's approval now",
    )
    p.add_argument(
        "--include-notices",
        action="store_true",
        help="also the gateway's own notices to staff (held, refused, bounced, reminders), "
        "which are recorded but are not disclosures",
    )
    return p


def _day(text: str | None, *, end: bool = False) -> float | None:
    if not text:
        return None
    try:
        return parse_day(text, end=end)
    except ValueError:
        raise CLIError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _filters(args: argparse.Namespace) -> Filters:
    kinds = ("admin", "purge") if getattr(args, "admin", False) else ROOT_KINDS
    return Filters(
        since=_day(args.since),
        until=_day(args.until, end=True),
        staff=args.staff or "",
        recipient=args.recipient or "",
        organisation=args.organisation or "",
        family=args.family or "",
        consent=args.consent or "",
        incomplete=args.incomplete,
        refused=args.refused,
        retention_hold=args.retention_hold,
        held_for_approval=args.held_for_approval,
        inform_due=args.inform_due,
        hold_review_due=args.hold_review_due,
        include_notices=args.include_notices,
        kinds=kinds,
    )


def cmd_list(args: argparse.Namespace) -> int:
    records = open_register(args).records(_filters(args))
    if not records:
        print("No entries match.")
        return 0
    print((fmt.admin_table if args.admin else fmt.list_table)(records), end="")
    print(f"{len(records)} entr{'y' if len(records) == 1 else 'ies'}; times are local.")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    record = open_register(args).record(args.entry)
    if record is None:
        raise CLIError(f"there is no register entry {args.entry}")
    print(show_text(record), end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    records = open_register(args).records(_filters(args))
    if args.format == "csv":
        text = csv_text(records)
    else:
        text = json.dumps([json_record(r) for r in records], indent=1, ensure_ascii=False) + "\n"
    write_output(text, args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.client_copy and args.summary:
        raise CLIError("--client-copy goes with --family")
    if args.summary:
        return _summary_report(args)
    if args.since or args.until or args.format != "text":
        raise CLIError("--since, --until and --format go with --summary")
    register = open_register(args)
    records = register.records(Filters(family=args.family))
    text = (client_copy_text if args.client_copy else report_text)(
        args.family, records, time.time()
    )
    write_output(text, args.output)
    return 0


def _summary_report(args: argparse.Namespace) -> int:
    since, until = _day(args.since), _day(args.until, end=True)
    if since is not None and until is not None and until <= since:
        raise CLIError("--until is before --since")
    figures = summarise(open_register(args), since=since, until=until, now=time.time())
    write_output((summary_csv if args.format == "csv" else summary_text)(figures), args.output)
    return 0
