"""``c4f-gateway contacts review`` and ``history``: the MX sweep (with the fax-route
list the config names), approvals lapsed or due, renewals and attestations, and the
audit trail of every change."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, timedelta

from filters.fax_route import FaxRoutes, load_providers, providers_path
from gateway.cli import CLIError
from gateway.cli.common import table
from gateway.cli.contacts_show import find, state
from gateway.cli.progress import Progress, progress_for
from gateway.directory.contact import review_date
from gateway.directory.contacts import ContactRepository
from gateway.directory.mx_sweep import Flag, default_resolver, sweep
from gateway.settings import Settings


def fax_routes(settings: Settings) -> FaxRoutes:
    options = settings.filter.get("fax_route", {})
    return FaxRoutes(
        load_providers(providers_path(options.get("providers_file"), settings.base_dir))
    )


def sweep_mx(
    repo: ContactRepository,
    settings: Settings,
    domains: set[str] | None,
    progress: Progress | None = None,
) -> list[Flag]:
    providers = fax_routes(settings).providers
    return asyncio.run(
        sweep(repo, default_resolver(settings.dns), providers, domains=domains, progress=progress)
    )


def print_flags(flags: list[Flag]) -> None:
    print(f"MX check: {len(flags)} flag(s)")
    for f in flags:
        print(f"  {f.ref} {f.domain}: {f.kind}: {f.detail}")


def review_contacts(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    if args.renew or args.not_fax or args.accept_mx:
        if not args.by:
            raise CLIError("say who makes the change with --by NAME")
        today = repo.today()
        if args.renew:
            c = find(repo, args.renew)
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
            c = find(repo, args.not_fax)
            repo.update(
                c.id, args.by, "attest-not-fax", not_fax_by=args.by, not_fax_on=today.isoformat()
            )
            print(f"attested {c.ref} as not a fax route")
        if args.accept_mx:
            c = find(repo, args.accept_mx)
            repo.update(c.id, args.by, "accept-mx", mx_hosts=c.mx_seen or c.mx_hosts, mx_flag="")
            print(f"accepted MX of {c.ref}: {', '.join(c.mx_seen or c.mx_hosts or ()) or '-'}")
        return 0
    if not args.no_dns:
        with progress_for(args, "contacts review: MX lookups", "domains") as progress:
            flags = sweep_mx(repo, settings, None, progress)
        print_flags(flags)
    today = repo.today()
    horizon = today + timedelta(days=args.due_within)
    due = [c for c in repo.all() if date.fromisoformat(c.review_due) <= horizon]
    print(f"Approvals lapsed or due within {args.due_within} days ({len(due)})")
    if due:
        print(
            table(
                ["REF", "ADDRESS", "ORGANISATION", "REVIEW DUE", "STATE"],
                [[c.ref, c.address, c.organisation, c.review_due, state(c, today)] for c in due],
            )
        )
    return 0


def contact_history(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    contact_id = None
    if args.contact:
        ref = args.contact.upper().removeprefix("C-")
        contact_id = int(ref) if ref.isdigit() else find(repo, args.contact).id
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
