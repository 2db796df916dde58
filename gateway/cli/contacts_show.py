"""``c4f-gateway contacts list`` and ``show``: the approved contacts and their state, in
the words the console uses (``mx_states``), and finding one contact by C-NNN or address."""

from __future__ import annotations

import argparse
from datetime import date

from gateway.cli import CLIError
from gateway.cli.common import table
from gateway.directory.contact import Contact
from gateway.directory.contacts import ContactRepository
from gateway.directory.mx_state import mx_states
from gateway.settings import Settings

# The help text of the mark (filters/approval.py does the holding).
REQUIRES_APPROVAL = "messages to this contact are held until a line manager approves them"


def find(repo: ContactRepository, text: str) -> Contact:
    found = repo.find(text)
    if found is None:
        raise CLIError(f"no contact {text}")
    return found


def state(c: Contact, today: date) -> str:
    states = ["expired" if c.expired(today) else "ok"]
    states += [s.code for s in mx_states(c)]
    if c.not_fax_by:
        states.append("not-fax-attested")
    if c.requires_approval:
        states.append("requires-approval")
    return ",".join(states)


def list_contacts(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    today = repo.today()
    entries = [c for c in repo.all() if not args.expired or c.expired(today)]
    for kind, title in (("address", "Approved addresses"), ("domain", "Whole-domain entries")):
        rows = [
            [c.ref, c.address, c.display_name, c.organisation, c.review_due, state(c, today)]
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


def show_contact(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    c = find(repo, args.contact)
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
        ("state", state(c, repo.today())),
        ("notes", c.notes),
        ("unusual form", "yes (matched exactly)" if c.unusual else "no"),
        (
            "public domain",
            f"approved as a whole: {c.public_domain_override}" if c.public_domain_override else "-",
        ),
        (
            "manager approval",
            f"required: {REQUIRES_APPROVAL}" if c.requires_approval else "not required",
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
