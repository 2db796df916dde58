"""``c4f-gateway register``: review, annotate, verify, purge and checkpoint the register.

list, show, export and report are the line manager's disclosure log review (policy,
"Inter-agency working"); annotate adds follow-ups (never edits); verify needs only the
MAC key, so an auditor can run it without being able to read personal fields.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path

from gateway.cli import CLIError, register_holds, register_requests
from gateway.cli.common import add_config_arg, existing_database, load_settings, logs_to_stderr
from gateway.cli.progress import add_quiet_arg, progress_for
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_retention import purge_removed_history
from gateway.register import formats as fmt
from gateway.register.client_copy import client_copy_text
from gateway.register.codec import MacKey
from gateway.register.export import csv_text, json_record
from gateway.register.ledger import Register, RegisterError
from gateway.register.period import parse_day
from gateway.register.purge import purge
from gateway.register.record_text import report_text, show_text
from gateway.register.retention import CATEGORIES
from gateway.register.summary import summarise
from gateway.register.summary_formats import summary_csv, summary_text
from gateway.register.verify import verify
from gateway.register.view import CONSENT_VALUES, ROOT_KINDS, THIRD_PARTY_FIELDS, Filters
from gateway.settings import Settings
from gateway.settings.register import RegisterSettings, register_settings
from gateway.store import Store


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("register", help="review and check the disclosure register")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = _with_filters(_common(sub.add_parser("list", help="list entries, newest last")))
    ls.add_argument("--admin", action="store_true", help="list admin actions and purges")
    ls.set_defaults(func=cmd_list)

    show = _common(sub.add_parser("show", help="one entry with its follow-ups"))
    show.add_argument("entry", type=int)
    show.set_defaults(func=cmd_show)

    export = _with_filters(_common(sub.add_parser("export", help="CSV or JSON for review")))
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", type=Path, help="write to this file (default: stdout)")
    export.set_defaults(func=cmd_export)

    report = _common(
        sub.add_parser(
            "report",
            help="everything shared about one family, or the figures of a period",
            description="--family REF: everything shared about one family. --summary: the "
            "register at a glance for a period (messages sent and refused, held now, "
            'disclosures without consent, incomplete records, "person informed" '
            "outstanding; disclosures per month by consent and per receiving organisation; "
            "held messages and time to decision; incomplete records by age).",
        )
    )
    what = report.add_mutually_exclusive_group(required=True)
    what.add_argument("--family", metavar="REF")
    what.add_argument("--summary", action="store_true", help="the figures of a period")
    report.add_argument("--since", metavar="DATE", help="--summary from this local date")
    report.add_argument("--until", metavar="DATE", help="--summary up to and including this date")
    report.add_argument(
        "--format", choices=("text", "csv"), default="text", help="--summary as text or CSV"
    )
    report.add_argument(
        "--client-copy",
        action="store_true",
        help="--family for the family itself: third-party and safeguarding entries withheld, "
        "people's names replaced by their organisation",
    )
    report.add_argument("--output", type=Path)
    report.set_defaults(func=cmd_report)

    ann = _common(sub.add_parser("annotate", help="add a follow-up to an entry"))
    ann.add_argument("entry", type=int)
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
    ann.add_argument("--consent", choices=CONSENT_VALUES[:3])
    ann.add_argument("--family", metavar="REF")
    ann.add_argument("--nature", help="the nature of the information shared")
    ann.add_argument("--safeguarding", choices=("yes", "no"))
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
    ann.add_argument("--by", default=_whoami(), help="who records this (default: you)")
    ann.set_defaults(func=cmd_annotate)

    ver = _common(sub.add_parser("verify", help="check the chain and the checkpoints"))
    ver.add_argument(
        "--mac-key-file",
        type=Path,
        help="an earlier MAC key (kept offline) to check older entries too",
    )
    add_quiet_arg(ver)
    ver.set_defaults(func=cmd_verify)

    pg = _common(sub.add_parser("purge", help="destroy entries past the retention period"))
    pg.add_argument("--dry-run", action="store_true", help="only say what would be purged")
    pg.add_argument("--entry", type=int, help="purge this record now, whatever its age")
    pg.add_argument("--by", default=_whoami())
    add_quiet_arg(pg)
    pg.set_defaults(func=cmd_purge)

    cp = _common(sub.add_parser("checkpoint", help="write today's signed head file"))
    cp.set_defaults(func=cmd_checkpoint)

    register_requests.add_parser(sub)
    register_holds.add_parser(sub)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_config_arg(p)
    return p


def _with_filters(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--since", metavar="DATE", help="from this local date (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="up to and including this local date")
    p.add_argument("--staff", metavar="LOGIN")
    p.add_argument("--recipient", metavar="TEXT", help="address contains TEXT")
    p.add_argument("--organisation", metavar="TEXT", help="organisation contains TEXT")
    p.add_argument("--family", metavar="REF")
    p.add_argument("--consent", choices=CONSENT_VALUES)
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


def _settings(args: argparse.Namespace) -> tuple[Settings, RegisterSettings, Store]:
    logs_to_stderr()  # the answer goes to stdout, without info events in it
    settings = load_settings(args)
    return settings, register_settings(settings), Store(existing_database(settings))


def _open(args: argparse.Namespace) -> Register:
    _, rs, store = _settings(args)
    return Register.from_settings(store, rs)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8", newline="")
        output.chmod(0o600)  # it holds personal data


def cmd_list(args: argparse.Namespace) -> int:
    records = _open(args).records(_filters(args))
    if not records:
        print("No entries match.")
        return 0
    print((fmt.admin_table if args.admin else fmt.list_table)(records), end="")
    print(f"{len(records)} entr{'y' if len(records) == 1 else 'ies'}; times are local.")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    record = _open(args).record(args.entry)
    if record is None:
        raise CLIError(f"there is no register entry {args.entry}")
    print(show_text(record), end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    records = _open(args).records(_filters(args))
    if args.format == "csv":
        text = csv_text(records)
    else:
        text = json.dumps([json_record(r) for r in records], indent=1, ensure_ascii=False) + "\n"
    _write(text, args.output)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.client_copy and args.summary:
        raise CLIError("--client-copy goes with --family")
    if args.summary:
        return _summary_report(args)
    if args.since or args.until or args.format != "text":
        raise CLIError("--since, --until and --format go with --summary")
    register = _open(args)
    records = register.records(Filters(family=args.family))
    text = (client_copy_text if args.client_copy else report_text)(
        args.family, records, time.time()
    )
    _write(text, args.output)
    return 0


def _summary_report(args: argparse.Namespace) -> int:
    since, until = _day(args.since), _day(args.until, end=True)
    if since is not None and until is not None and until <= since:
        raise CLIError("--until is before --since")
    figures = summarise(_open(args), since=since, until=until, now=time.time())
    _write((summary_csv if args.format == "csv" else summary_text)(figures), args.output)
    return 0


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
        seq = _open(args).annotate(
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


def cmd_verify(args: argparse.Namespace) -> int:
    _, rs, store = _settings(args)
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
    register = _open(args)
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
        f"than {fmt.local_time(result.cutoff)}."
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
        path = _open(args).checkpoint()
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    print(f"Checkpoint written: {path}")
    return 0
