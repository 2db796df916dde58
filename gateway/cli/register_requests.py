"""``c4f-gateway register request add``: record a request for information received.

Policy, "Inter-agency working": the person receiving a request records who made it and
the nature of the information requested, however it came (phone, letter, email, in
person). The request gets a register number; the message that answers it carries
``[request:N]`` in its subject, and ``register show N`` lists its answers.
"""

from __future__ import annotations

import argparse
from datetime import date

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg
from gateway.cli.register_open import add_staff_by, open_register_by
from gateway.directory.contacts import ContactRepository
from gateway.register import requests
from gateway.register.ledger import RegisterError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``register request add``, hooked into ``register``'s own sub-commands."""
    p = sub.add_parser(
        "request",
        help="record a request for information received (phone, letter, email, in person)",
    )
    actions = p.add_subparsers(dest="request_action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="record a request; prints its number",
        description="Record a request for information about a family, as the policy asks "
        "(who made it, how it came, when, what they asked for, who took it). Prints the "
        "request's register number: put [request:N] in the subject of the message that "
        "answers it, and `register show N` lists its answers.",
    )
    add.add_argument(
        "--from",
        dest="requester",
        required=True,
        metavar="TEXT",
        help="the agency or person making the request",
    )
    add.add_argument(
        "--contact", metavar="ID", help="the approved contact they are (C-NNN), if any"
    )
    add.add_argument("--via", required=True, choices=requests.VIA, help="how it arrived")
    add.add_argument(
        "--received", metavar="YYYY-MM-DD", help="the date it was received (default: today)"
    )
    add.add_argument("--nature", required=True, metavar="TEXT", help="the information requested")
    add.add_argument("--family", metavar="REF", help="the family's reference")
    add_staff_by(add, "the staff member who took the request")
    add_config_arg(add)
    add.set_defaults(func=cmd_request_add)


def cmd_request_add(args: argparse.Namespace) -> int:
    register, by = open_register_by(args)
    contact_id = organisation = ""
    if args.contact:
        found = ContactRepository(register.store, keyring=register.keyring).find(args.contact)
        if found is None:
            raise CLIError(f"--contact: there is no contact {args.contact} (see `contacts list`)")
        contact_id, organisation = found.ref, found.organisation
    today = date.today()
    new = requests.NewRequest(
        requester=args.requester,
        via=args.via,
        received=args.received or today.isoformat(),
        nature=args.nature,
        by=by,
        family=args.family or "",
        contact_id=contact_id,
        organisation=organisation,
    )
    try:
        seq = requests.record(register, new, today)
    except RegisterError as exc:
        raise CLIError(str(exc)) from exc
    print(f"Recorded request {seq}.")
    print(f"Put [request:{seq}] in the subject of the message that answers it.")
    return 0
