"""``c4f-gateway contacts``: the approved-contact list and its audit trail.

Changes apply to the next transaction of a running gateway (no restart). Every change
is recorded with who made it (``--by``, plus the operating-system user) and the entry
before and after; ``contacts history`` shows it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from pathlib import Path

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings
from gateway.cli.contacts_files import export_contacts, import_contacts, import_help
from gateway.cli.contacts_review import (
    contact_history,
    fax_routes,
    print_flags,
    review_contacts,
    sweep_mx,
)
from gateway.cli.contacts_show import REQUIRES_APPROVAL, find, list_contacts, show_contact
from gateway.cli.progress import add_quiet_arg
from gateway.directory import public_domains
from gateway.directory.contact import Contact, ContactError, PublicDomainError, review_date
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_sealed import ContactsUnreadable
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.store import Store


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
    add.add_argument(
        "--role", default="", metavar="TEXT", help='their job title, e.g. "Family court adviser"'
    )
    add.add_argument(
        "--approved-by", required=True, metavar="NAME", help="who approved the contact"
    )
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
    add.add_argument("--notes", default="", metavar="TEXT", help="anything worth knowing")
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
        "--requires-approval", action="store_true", help=f"{REQUIRES_APPROVAL} (see 'approval')"
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
    _contact_arg(rm)
    _by_arg(rm)

    ls = actions.add_parser("list", help="list addresses, then whole-domain entries")
    ls.add_argument("--expired", action="store_true", help="only lapsed approvals")

    show = actions.add_parser("show", help="everything about one contact")
    _contact_arg(show)

    ap = actions.add_parser(
        "approval",
        help="mark or unmark a contact as requiring line-manager approval",
        description=f"A contact marked as requiring approval: {REQUIRES_APPROVAL}. "
        "The change is audited like every other.",
    )
    _contact_arg(ap)
    needed = ap.add_mutually_exclusive_group(required=True)
    needed.add_argument("--required", dest="required", action="store_true", help=REQUIRES_APPROVAL)
    needed.add_argument(
        "--not-required",
        dest="required",
        action="store_false",
        help="messages to this contact leave without waiting (the other rules still apply)",
    )
    _by_arg(ap)

    imp = actions.add_parser(
        "import",
        help="add (and with --update, change) contacts from CSV (all rows or none)",
        description="Read a CSV file, such as one 'contacts export' wrote, and add its new "
        "contacts. A row equal to the contact it names changes nothing; a row that differs is "
        "refused unless --update is given. Every row is checked first: one bad row and "
        "nothing is written. Each change is one audit row and one register entry.",
        epilog=import_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file", type=Path, help="the CSV file ('-': standard input)")
    _by_arg(imp)
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
    rev.add_argument(
        "--due-within",
        type=int,
        default=30,
        metavar="DAYS",
        help="list approvals lapsed or due for review within DAYS days (default: 30)",
    )
    rev.add_argument("--no-dns", action="store_true", help="skip the MX sweep")
    add_quiet_arg(rev)

    hist = actions.add_parser("history", help="the admin audit trail")
    hist.add_argument(
        "contact",
        nargs="?",
        metavar="C-NNN|ADDRESS",
        help="only this contact's changes (default: every contact's)",
    )

    for a in actions.choices.values():
        add_config_arg(a)
    p.set_defaults(func=run)


def _contact_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "contact", metavar="C-NNN|ADDRESS", help="the contact's reference (C-NNN) or its address"
    )


def _by_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", required=True, metavar="NAME", help="who makes the change")


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


def _add(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    routes = fax_routes(settings)
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
        print_flags(sweep_mx(repo, settings, {c.domain}))
    return 0


def _remove(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    c = repo.remove(find(repo, args.contact).id, args.by)
    print(f"removed {c.ref} {c.address}")
    return 0


def _approval(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    c = find(repo, args.contact)
    changed = c.requires_approval != args.required
    if changed:
        c = repo.update(c.id, args.by, "requires-approval", requires_approval=args.required)
    state = (
        f"requires approval: {REQUIRES_APPROVAL}"
        if c.requires_approval
        else "does not require line-manager approval"
    )
    print(f"{c.ref} {c.address} {state}{'' if changed else ' (unchanged)'}")
    return 0


Handler = Callable[[argparse.Namespace, ContactRepository, Settings], int]


HANDLERS: dict[str, Handler] = {
    "add": _add,
    "remove": _remove,
    "list": list_contacts,
    "show": show_contact,
    "approval": _approval,
    "import": import_contacts,
    "export": export_contacts,
    "review": review_contacts,
    "history": contact_history,
}
