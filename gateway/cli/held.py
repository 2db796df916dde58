"""``c4f-gateway held``: messages held for line-manager approval (policy, "Disclosing
information"), decided here or in the console through the same :class:`gateway.holds.service.Holds`.

The command runs on the gateway host, but every decision is made as a named staff
account (``--by``) and the rules apply to that account: only the sender's line managers
or an admin decide, only the sender withdraws. ``list`` shows no personal content;
``show`` decrypts the details only for someone allowed to see them.
"""

from __future__ import annotations

import argparse

from gateway.cli import CLIError
from gateway.cli.common import (
    add_config_arg,
    existing_database,
    load_settings,
    local_time,
    logs_to_stderr,
    table,
)
from gateway.directory.staff import StaffMember
from gateway.holds.held import HeldDetails, HeldMessage
from gateway.holds.reading import Unreadable, read_text
from gateway.holds.service import HoldError, Holds
from gateway.mail.readable import Readable
from gateway.register.ledger import Register
from gateway.register.record import CONSENT_WORDS
from gateway.store import Store

ADMINS_ONLY = "admins only (no line manager configured)"
_ID = "the queue ID from the SMTP reply, the notice or `held list` (any case)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "held",
        help="list, show, approve, refuse or withdraw messages held for approval",
        description="Messages the approval policy holds (for example sent without consent, "
        "or flagged safeguarding) wait here until one of the sender's line managers or an "
        "admin approves or refuses them, or the sender withdraws them; unanswered, they "
        "expire and are never sent. --by names the staff account acting: the rules apply "
        "to that account, and the register records it.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = actions.add_parser(
        "list",
        help="one line per held message, without its content",
        description="ID, sender, times, why it is held and who may decide; never the "
        "subject or the recipients (see `held show`).",
    )
    ls.add_argument(
        "--by", metavar="LOGIN", help="only those LOGIN may decide on, or withdraw as sender"
    )

    show = actions.add_parser(
        "show",
        help="what an approver needs to decide: recipients, consent, reason, subject…",
        description="Decrypts the held message's details for LOGIN only if LOGIN is its "
        "sender, one of the sender's line managers or an admin.",
    )
    show.add_argument("queue_id", metavar="ID", help=_ID)
    _by(show, "who is reading it")
    show.add_argument(
        "--body",
        action="store_true",
        help="also print the message text (an HTML-only message as plain text) and each "
        "attachment's name, type and size; each reading is recorded in the register",
    )

    approve = actions.add_parser(
        "approve",
        help="release a held message for delivery",
        description="Only one of the sender's line managers or an admin may approve, never "
        "the sender. When consent was refused, not sought or not recorded, a note giving "
        "the reason for sharing is required. The approval, approver and note go into the "
        "register; the running gateway then delivers the message.",
    )
    approve.add_argument("queue_id", metavar="ID", help=_ID)
    _by(approve, "the line manager or admin approving")
    approve.add_argument(
        "--note",
        default="",
        metavar="TEXT",
        help="the reason for sharing (required when consent was refused, not sought or "
        "not recorded, unless --consent obtained); recorded in the register as the reason",
    )
    approve.add_argument(
        "--consent",
        choices=["obtained", "refused", "not-sought"],
        default="",
        help="record the consent status as it is now known (for example obtained since the "
        "message was sent); the register entry then shows it",
    )

    refuse = actions.add_parser(
        "refuse",
        help="refuse a held message: it is deleted and never sent",
        description="Only one of the sender's line managers or an admin may refuse. The "
        "message is deleted (crypto-shredded) and the sender is told, with the note.",
    )
    refuse.add_argument("queue_id", metavar="ID", help=_ID)
    _by(refuse, "the line manager or admin refusing")
    refuse.add_argument(
        "--note",
        required=True,
        metavar="TEXT",
        help="why it was refused; sent to the sender and recorded in the register",
    )

    withdraw = actions.add_parser(
        "withdraw",
        help="the sender takes back their own held message",
        description="Only the sender may withdraw; the message is deleted and never sent.",
    )
    withdraw.add_argument("queue_id", metavar="ID", help=_ID)
    _by(withdraw, "the sender")

    for a in actions.choices.values():
        add_config_arg(a)
    p.set_defaults(func=run)


def _by(parser: argparse.ArgumentParser, who: str) -> None:
    parser.add_argument("--by", required=True, metavar="LOGIN", help=f"{who} (a staff login)")


def run(args: argparse.Namespace) -> int:
    logs_to_stderr()
    settings = load_settings(args)
    store = Store(existing_database(settings))
    try:
        register = Register.from_settings(store, settings.register)
        return _run(args, Holds.open(store, settings, register), register)
    finally:
        store.close()


def _run(args: argparse.Namespace, holds: Holds, register: Register) -> int:
    viewer = _member(holds, args.by) if args.by else None
    if args.action == "list":
        return _list(holds, viewer)
    qid = args.queue_id.upper()
    held = holds.get(qid)
    if held is None:
        raise CLIError(f"no message {qid} is waiting for approval")
    assert viewer is not None  # --by is required for every other action
    if args.action == "show":
        if not holds.may_see(viewer, held):
            raise CLIError(
                f"{viewer.login} may not see {qid}: its details are shown only to its "
                f"sender{_deciders(held)}"
            )
        try:
            details = holds.details(held)
        except HoldError as exc:
            raise CLIError(str(exc)) from exc
        print(_show(details, viewer), end="")
        if args.body:
            try:
                text = read_text(holds.spool, held, viewer.login, register.record_admin)
            except Unreadable as exc:
                raise CLIError(str(exc)) from exc
            print(_body(text), end="")
        return 0
    try:
        if args.action == "approve":
            holds.approve(qid, viewer.login, args.note, args.consent)
            print(f"approved: {qid} will be delivered shortly; the approval is in the register")
        elif args.action == "refuse":
            holds.refuse(qid, viewer.login, args.note)
            print(
                f"refused: {qid} is deleted and will not be sent; {held.staff} is told, "
                "with your note"
            )
        else:
            holds.withdraw(qid, viewer.login)
            print(f"withdrawn: {qid} is deleted and will not be sent")
    except HoldError as exc:
        raise CLIError(str(exc)) from exc
    return 0


def _member(holds: Holds, login: str) -> StaffMember:
    member = holds.staff.get(login)
    if member is None:
        raise CLIError(f"there is no staff account {login}")
    return member


def _list(holds: Holds, viewer: StaffMember | None) -> int:
    pending = holds.pending(viewer)
    if not pending:
        who = f" that {viewer.login} may decide on or withdraw" if viewer else ""
        print(f"no messages are waiting for approval{who}")
        return 0
    print(
        table(
            ["Queue ID", "Sender", "Held since", "Expires", "Held because", "Who can decide"],
            [
                [
                    h.queue_id,
                    h.staff,
                    local_time(h.held_at),
                    local_time(h.expires_at),
                    ", ".join(h.reasons),
                    _who(h),
                ]
                for h in pending
            ],
        )
    )
    return 0


def _who(held: HeldMessage) -> str:
    return ADMINS_ONLY if held.admin_only else ", ".join(held.managers) + " (or an admin)"


def _deciders(held: HeldMessage) -> str:
    if held.admin_only:
        return " and admins (no line manager is configured)"
    return f", their line managers ({', '.join(held.managers)}) and admins"


def _show(d: HeldDetails, viewer: StaffMember) -> str:
    h = d.held
    recipients = []
    for r in d.recipients:
        about = [str(r.get(k) or "") for k in ("display_name", "organisation")]
        if r.get("contact_id"):
            about.append(f"contact {r['contact_id']}")
        words = ", ".join(a for a in about if a)
        recipients.append(str(r["address"]) + (f" ({words})" if words else ""))
    consent = CONSENT_WORDS.get(d.consent, d.consent)
    pairs = [
        ("Queue ID", h.queue_id),
        ("Sender", d.mail_from or h.staff),
        *(("Recipient", r) for r in recipients),
        ("Consent", consent),
        ("Reason", d.reason or "-"),
        ("Family reference", d.family or "-"),
        ("Nature", d.nature or "-"),
        ("Safeguarding", "yes" if d.safeguarding else "no"),
        ("Subject", d.subject or "-"),
        ("Attachments", ", ".join(d.attachments) or "none"),
        ("Size", f"{d.size:,} bytes"),
        ("Held since", local_time(h.held_at)),
        ("Expires", local_time(h.expires_at) + " (then refused, never sent)"),
        ("Held because", ", ".join(h.reasons)),
        ("Who can decide", _who(h)),
        ("Note to approve", "required (consent " + consent + ")" if h.needs_note else "optional"),
    ]
    if viewer.login == h.staff:
        pairs.append(("You may", f"withdraw it: c4f-gateway held withdraw {h.queue_id}"))
    else:
        pairs.append(("You may", "approve or refuse it (refusing needs a note for the sender)"))
    return "".join(f"{k + ':':<18}{_printable(v)}\n" for k, v in pairs)


def _body(r: Readable) -> str:
    """The message text for a terminal, between rules, then its attachments."""
    head = "Text (the HTML part as plain text):" if r.from_html else "Text:"
    lines = [_printable(line) for line in r.text.splitlines()] or ["(no text)"]
    files = [
        f"  {a.number}. {_printable(a.name)} ({a.content_type}, {a.size:,} bytes)"
        for a in r.attachments
    ]
    rule = "-" * 72
    return (
        "\n".join(
            [head, rule, *lines, rule, "Attachments:" if files else "Attachments: none", *files]
        )
        + "\n"
    )


def _printable(text: str) -> str:
    # Subjects and file names come from the message: no terminal control sequences.
    return "".join(c if c.isprintable() else "?" for c in text)
