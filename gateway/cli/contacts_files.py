"""``c4f-gateway contacts import`` and ``export``: the contact list as CSV, every row
checked before anything is written (:mod:`gateway.directory.contacts_import`)."""

from __future__ import annotations

import argparse
import sys

from gateway.cli import CLIError
from gateway.cli.contacts_review import fax_routes
from gateway.cli.progress import progress_for
from gateway.directory.contacts import ContactRepository
from gateway.directory.contacts_csv import COLUMNS, EXAMPLE, REQUIRED, CSVImportError, export_csv
from gateway.directory.contacts_import import import_csv
from gateway.settings import Settings


def import_help() -> str:
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


def import_contacts(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    try:
        if str(args.file) == "-":
            text = sys.stdin.buffer.read().decode("utf-8-sig")
        else:
            text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"{args.file}: cannot read: {exc}") from None
    try:
        with progress_for(args, "contacts import", "rows") as progress:
            plan = import_csv(
                repo,
                text,
                args.by,
                fax_routes(settings).refusal,
                update=args.update,
                progress=progress,
            )
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


def export_contacts(args: argparse.Namespace, repo: ContactRepository, settings: Settings) -> int:
    text = export_csv(repo)
    if args.file is None:
        sys.stdout.write(text)
    else:
        args.file.write_text(text, encoding="utf-8", newline="")
        args.file.chmod(0o600)  # personal data
        print(f"exported {text.count(chr(10)) - 1} contact(s) to {args.file}")
    return 0
