"""``c4f-gateway contacts``: the approved-contact list and its audit trail.

Changes apply to the next transaction of a running gateway (no restart). Every change
is recorded with who made it (``--by``, plus the operating-system user) and the entry
before and after; ``contacts history`` shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from filters.fax_route import FaxRoutes, load_providers, providers_path
from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings, table
from gateway.cli.progress import Progress, add_quiet_arg, progress_for
from gateway.directory import public_domains
from gateway.directory.contacts import (
    Contact,
    ContactError,
    ContactRepository,
    PublicDomainError,
    review_date,
)
from gateway.directory.contacts_csv import (
    COLUMNS,
    EXAMPLE,
    REQUIRED,
    CSVImportError,
    export_csv,
    import_csv,
)
from gateway.directory.contacts_sealed import ContactsUnreadable
from gateway.directory.mx_state import mx_states
from gateway.directory.mx_sweep import Flag, default_resolver, sweep
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.store import Store

# The help text of the mark (filters/approval.py does the holding).
_REQUIRES_APPROVAL = "messages to this contact are held until a line manager approves them"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "contacts",
        help="approved contacts: add, remove, list, show, approval, import, export, review, "
        "history",
        description="Mail leaves only for approved contacts (or the centre's own domains).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="approve an address (or, with --domain, a domain)")
    add.add_argument("address", help="the address exactly as it will be used")
    add.add_argument("--domain", action="store_true", help="approve every address at ADDRESS")
    add.add_argument("--name", default="", help="the person's name (required for addresses)")
    add.add_argument("--org", required=True, help="organisation or agency")
    add.add_argument("--role", default="")
    add.add_argument("--approved-by", required=True, metavar="NAME")
    add.add_argument(
        "--verified",
        required=True,
        metavar="HOW",
        help='how the address was verified, e.g. "phoned back on a known number"',
    )
    add.add_argument("--approved-on", type=_date, metavar="YYYY-MM-DD", help="default: today")
    add.add_argument(
        "--review-due", type=_date, metavar="YYYY-MM-DD", help="default: 12 months after approval"
    )
    add.add_argument("--notes", default="")
    add.add_argument(
        "--not-fax",
        action="store_true",
        help="attest that this address is not a fax route (for soft fax signs)",
    )
    add.add_argument(
        "--allow-unusual",
        action="store_true",
        help="approve a quoted, literal or non-ASCII address exactly as written",
    )
    add.add_argument(
        "--requires-approval", action="store_true", help=f"{_REQUIRES_APPROVAL} (see 'approval')"
    )
    add.add_argument(
        "--public-domain-override",
        metavar="REASON",
        default="",
        help="approve a whole public webmail or disposable-mail domain (gmail.com, "
        "hotmail.co.uk, ...) anyway, for this recorded reason; without it such a --domain is "
        "refused (single addresses there are approved one by one)",
    )
    add.add_argument("--no-dns", action="store_true", help="skip the MX check")
    add.add_argument("--by", metavar="NAME", help="who makes the change (default: approver)")

    rm = actions.add_parser("remove", help="withdraw an approval")
    rm.add_argument("contact", metavar="C-NNN|ADDRESS")
    rm.add_argument("--by", required=True, metavar="NAME")

    ls = actions.add_parser("list", help="list addresses, then whole-domain entries")
    ls.add_argument("--expired", action="store_true", help="only lapsed approvals")

    show = actions.add_parser("show", help="everything about one contact")
    show.add_argument("contact", metavar="C-NNN|ADDRESS")

    ap = actions.add_parser(
        "approval",
        help="mark or unmark a contact as requiring line-manager approval",
        description=f"A contact marked as requiring approval: {_REQUIRES_APPROVAL}. "
        "The change is audited like every other.",
    )
    ap.add_argument("contact", metavar="C-NNN|ADDRESS")
    needed = ap.add_mutually_exclusive_group(required=True)
    needed.add_argument("--required", dest="required", action="store_true", help=_REQUIRES_APPROVAL)
    needed.add_argument(
        "--not-required",
        dest="required",
        action="store_false",
        help="messages to this contact leave without waiting (the other rules still apply)",
    )
    ap.add_argument("--by", required=True, metavar="NAME", help="who makes the change")

    imp = actions.add_parser(
        "import",
        help="add (and with --update, change) contacts from CSV (all rows or none)",
        description="Read a CSV file, such as one 'contacts export' wrote, and add its new "
        "contacts. A row equal to the contact it names changes nothing; a row that differs is "
        "refused unless --update is given. Every row is checked first: one bad row and "
        "nothing is written. Each change is one audit row and one register entry.",
        epilog=_import_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file", type=Path, help="the CSV file ('-': standard input)")
    imp.add_argument("--by", required=True, metavar="NAME", help="who makes the change")
    imp.add_argument(
        "--update", action="store_true", help="change contacts whose rows differ from the list"
    )
    add_quiet_arg(imp)

    exp = actions.add_parser("export", help="write all contacts as CSV")
    exp.add_argument("file", type=Path, nargs="?", help="default: standard output")

    rev = actions.add_parser("review", help="DNS sweep, due reviews; renew or attest")
    rev.add_argument("--renew", metavar="C-NNN", help="re-approve for another 12 months")
    rev.add_argument("--review-due", type=_date, metavar="YYYY-MM-DD", help="with --renew")
    rev.add_argument(
        "--public-domain-override",
        metavar="REASON",
        help="with --renew: why a whole public webmail domain stays approved (recorded)",
    )
    rev.add_argument("--not-fax", metavar="C-NNN", help="attest: not a fax route")
    rev.add_argument(
        "--accept-mx", metavar="C-NNN", help="accept the MX hosts last seen and clear a fax-MX flag"
    )
    rev.add_argument("--by", metavar="NAME", help="who makes the change")
    rev.add_argument("--due-within", type=int, default=30, metavar="DAYS")
    rev.add_argument("--no-dns", action="store_true", help="skip the MX sweep")
    add_quiet_arg(rev)

    hist = actions.add_parser("history", help="the admin audit trail")
    hist.add_argument("contact", nargs="?", metavar="C-NNN|ADDRESS")

    for a in actions.choices.values():
        add_config_arg(a)
    p.set_defaults(func=run)


def _import_help() -> str:
    width = max(len(name) for name, _, _ in COLUMNS)
    lines = ["columns (any order; headers match case-insensitively; '*' required):"]
    for name, aliases, default in COLUMNS:
        mark = "*" if name in REQUIRED else " "
        also = f" (also: {', '.join(aliases)})" if aliases else ""
        lines.append(f"  {mark}{name:{width}}  {default}{also}")
    lines += [
        "",
        "a column left out keeps a contact's value on --update, and takes the default on an add.",
        "",
        "example:",
        *("  " + line for line in EXAMPLE.splitlines()),
    ]
    return "\n".join(lines)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = Store(settings.storage.database)
    try:
        register = Register.from_settings(store, settings.register)
        repo = ContactRepository(
            store,
            keyring=register.keyring,
            register_audit=register.record_admin,
            public_domains=public_domains.from_settings(settings.filter, settings.base_dir),
        )
        return HANDLERS[args.action](args, repo, settings)
    except PublicDomainError as exc:
        raise CLIError(
            f"{exc.domain} {exc.reason}, or give --public-domain-override REASON"
        ) from None
    except (ContactError, ContactsUnreadable) as exc:
        raise CLIError(str(exc)) from None
    finally:
        store.close()


def _routes(settings: Settings) -> FaxRoutes:
    options = settings.filter.get("fax_route", {})
    return FaxRoutes(
        load_providers(providers_path(options.get("providers_file"), settings.base_dir))
    )


def _find(repo: ContactRepository, text: str) -> Contact:
    found = repo.find(text)
    if found is None:
        raise CLIError(f"no contact {text}")
    return found


def _add(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    routes = _routes(settings)
    sign = None if args.domain else routes.classify(args.address)
    if sign is not None and sign.hard:
        raise CLIError(f"{args.address} is {sign.reason}: fax routes cannot be approved")
    approved = args.approved_on or repo.today()
    by = args.by or args.approved_by
    c = repo.add(
        Contact(
            id=0,
            kind="domain" if args.domain else "address",
            address=args.address,
            display_name=args.name,
            organisation=args.org,
            role=args.role,
            approved_by=args.approved_by,
            approved_on=approved.isoformat(),
            verified_how=args.verified,
            review_due=(args.review_due or review_date(approved)).isoformat(),
            notes=args.notes,
            unusual=args.allow_unusual,
            not_fax_by=by if args.not_fax else "",
            not_fax_on=repo.today().isoformat() if args.not_fax else "",
            requires_approval=args.requires_approval,
            public_domain_override=args.public_domain_override if args.domain else "",
        ),
        by,
    )
    print(f"added {c.ref} {c.address} (review due {c.review_due})")
    if c.public_domain_override:
        print(f"public domain approved as a whole; reason recorded: {c.public_domain_override}")
    if sign is not None and not args.not_fax:
        print(
            f"warning: {c.address} looks like {sign.reason}; mail to it stays refused "
            f"until an admin attests it: contacts review --not-fax {c.ref} --by NAME"
        )
    if not args.no_dns:
        _print_flags(_sweep(repo, settings, {c.domain}))
    return 0


def _remove(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    c = repo.remove(_find(repo, args.contact).id, args.by)
    print(f"removed {c.ref} {c.address}")
    return 0


def _list(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    today = repo.today()
    entries = [c for c in repo.all() if not args.expired or c.expired(today)]
    for kind, title in (("address", "Approved addresses"), ("domain", "Whole-domain entries")):
        rows = [
            [c.ref, c.address, c.display_name, c.organisation, c.review_due, _state(c, today)]
            for c in entries
            if c.kind == kind
        ]
        print(f"{title} ({len(rows)})")
        if rows:
            print(
                table(
                    [
                        "REF",
                        "ADDRESS" if kind == "address" else "DOMAIN",
                        "NAME",
                        "ORGANISATION",
                        "REVIEW DUE",
                        "STATE",
                    ],
                    rows,
                )
            )
        # The MX states in the console's words, so both read the same.
        for c in entries:
            if c.kind == kind:
                for s in mx_states(c):
                    print(f"{c.ref} {s.code}: {s.words}")
        print()
    return 0


def _state(c: Contact, today: date) -> str:
    states = ["expired" if c.expired(today) else "ok"]
    states += [s.code for s in mx_states(c)]
    if c.not_fax_by:
        states.append("not-fax-attested")
    if c.requires_approval:
        states.append("requires-approval")
    return ",".join(states)


def _show(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    c = _find(repo, args.contact)
    for label, value in (
        ("reference", c.ref),
        ("kind", c.kind),
        ("address", c.address),
        ("name", c.display_name),
        ("organisation", c.organisation),
        ("role", c.role),
        ("approved by", c.approved_by),
        ("approved on", c.approved_on),
        ("verified", c.verified_how),
        ("review due", c.review_due),
        ("state", _state(c, repo.today())),
        ("notes", c.notes),
        ("unusual form", "yes (matched exactly)" if c.unusual else "no"),
        (
            "public domain",
            f"approved as a whole: {c.public_domain_override}" if c.public_domain_override else "-",
        ),
        (
            "manager approval",
            f"required: {_REQUIRES_APPROVAL}" if c.requires_approval else "not required",
        ),
        (
            "not a fax route",
            f"attested by {c.not_fax_by} on {c.not_fax_on}" if c.not_fax_by else "-",
        ),
        ("MX at approval", ", ".join(c.mx_hosts) if c.mx_hosts is not None else "not checked"),
        (
            "MX last seen",
            f"{', '.join(c.mx_seen or ())} ({c.mx_checked_at})" if c.mx_checked_at else "-",
        ),
        ("fax-MX flag", c.mx_flag or "-"),
        ("changes", str(len(repo.history(c.id)))),
    ):
        print(f"{label + ':':17} {value}")
    return 0


def _approval(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    c = _find(repo, args.contact)
    changed = c.requires_approval != args.required
    if changed:
        c = repo.update(c.id, args.by, "requires-approval", requires_approval=args.required)
    state = (
        f"requires approval: {_REQUIRES_APPROVAL}"
        if c.requires_approval
        else "does not require line-manager approval"
    )
    print(f"{c.ref} {c.address} {state}{'' if changed else ' (unchanged)'}")
    return 0


def _import(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    routes = _routes(settings)

    def reject(address: str) -> str | None:
        sign = routes.classify(address)
        return f"{sign.reason}: fax routes cannot be approved" if sign and sign.hard else None

    try:
        if str(args.file) == "-":
            text = sys.stdin.buffer.read().decode("utf-8-sig")
        else:
            text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"{args.file}: cannot read: {exc}") from None
    try:
        with progress_for(args, "contacts import", "rows") as progress:
            plan = import_csv(repo, text, args.by, reject, update=args.update, progress=progress)
    except CSVImportError as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        raise CLIError(str(exc)) from None
    for row in plan.of("update"):
        assert row.contact is not None
        print(f"updated {row.contact.ref} {row.contact.address}: {', '.join(row.changed)}")
    added, updated = plan.of("add"), plan.of("update")
    print(
        f"imported {len(added)} new, {len(updated)} updated, "
        f"{len(plan.of('unchanged'))} unchanged contact(s)"
    )
    if added:
        print("run 'contacts review' to check the new contacts' MX hosts")
    return 0


def _export(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    text = export_csv(repo)
    if args.file is None:
        sys.stdout.write(text)
    else:
        args.file.write_text(text, encoding="utf-8", newline="")
        args.file.chmod(0o600)  # personal data
        print(f"exported {text.count(chr(10)) - 1} contact(s) to {args.file}")
    return 0


def _review(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    if args.renew or args.not_fax or args.accept_mx:
        if not args.by:
            raise CLIError("say who makes the change with --by NAME")
        today = repo.today()
        if args.renew:
            c = _find(repo, args.renew)
            due = args.review_due or review_date(today)
            reason = args.public_domain_override
            repo.update(
                c.id,
                args.by,
                "renew",
                approved_on=today.isoformat(),
                approved_by=args.by,
                review_due=due.isoformat(),
                **({"public_domain_override": reason} if reason is not None else {}),
            )
            print(f"renewed {c.ref} until {due}")
        if args.not_fax:
            c = _find(repo, args.not_fax)
            repo.update(
                c.id, args.by, "attest-not-fax", not_fax_by=args.by, not_fax_on=today.isoformat()
            )
            print(f"attested {c.ref} as not a fax route")
        if args.accept_mx:
            c = _find(repo, args.accept_mx)
            repo.update(c.id, args.by, "accept-mx", mx_hosts=c.mx_seen or c.mx_hosts, mx_flag="")
            print(f"accepted MX of {c.ref}: {', '.join(c.mx_seen or c.mx_hosts or ()) or '-'}")
        return 0
    if not args.no_dns:
        with progress_for(args, "contacts review: MX lookups", "domains") as progress:
            flags = _sweep(repo, settings, None, progress)
        _print_flags(flags)
    today = repo.today()
    horizon = today + timedelta(days=args.due_within)
    due = [c for c in repo.all() if date.fromisoformat(c.review_due) <= horizon]
    print(f"Approvals lapsed or due within {args.due_within} days ({len(due)})")
    if due:
        print(
            table(
                ["REF", "ADDRESS", "ORGANISATION", "REVIEW DUE", "STATE"],
                [[c.ref, c.address, c.organisation, c.review_due, _state(c, today)] for c in due],
            )
        )
    return 0


def _sweep(
    repo: ContactRepository,
    settings: Settings,
    domains: set[str] | None,
    progress: Progress | None = None,
) -> list[Flag]:
    providers = _routes(settings).providers
    return asyncio.run(
        sweep(repo, default_resolver(settings.dns), providers, domains=domains, progress=progress)
    )


def _print_flags(flags: list[Flag]) -> None:
    print(f"MX check: {len(flags)} flag(s)")
    for f in flags:
        print(f"  {f.ref} {f.domain}: {f.kind}: {f.detail}")


def _history(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    contact_id = None
    if args.contact:
        ref = args.contact.upper().removeprefix("C-")
        contact_id = int(ref) if ref.isdigit() else _find(repo, args.contact).id
    for row in repo.history(contact_id):
        print(
            f"{row['at']}  C-{row['contact_id']:03d}  {row['action']}  by {row['actor']} "
            f"(os user {row['os_user']})"
        )
        before = json.loads(row["before"]) if row["before"] else None
        after = json.loads(row["after"]) if row["after"] else None
        if before is None or after is None:
            verb = "" if before is None else "was "
            for key, value in sorted((after or before or {}).items()):
                if value not in ("", None, False):
                    print(f"    {key}: {verb}{value!r}")
            continue
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                print(f"    {key}: {before.get(key)!r} -> {after.get(key)!r}")
    return 0


Handler = Callable[[argparse.Namespace, ContactRepository, Settings], int]
HANDLERS: dict[str, Handler] = {
    "add": _add,
    "remove": _remove,
    "list": _list,
    "show": _show,
    "approval": _approval,
    "import": _import,
    "export": _export,
    "review": _review,
    "history": _history,
}
