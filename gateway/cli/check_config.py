"""``c4f-gateway check-config``: open everything ``serve`` would open, then exit.

It runs the same code as ``serve`` (:func:`gateway.opening.open_parts`): every key file,
certificate and data file, the database, the filters, the transport, and each folder the
gateway writes to. Every problem is reported as ``FILE: KEY: REASON`` (the config file,
the setting that leads to the problem, what is wrong), so an admin knows which line to fix.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from gateway.cli.common import add_config_arg, load_settings
from gateway.cli.policy_warnings import policy_warnings
from gateway.opening import missing_policy, open_parts
from gateway.settings import Auth


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="open what 'serve' opens (config, keys, certificates, database, folders, "
        "filters); exit 1 on any error",
        description="Load the config and open everything 'serve' opens, with the same code: "
        "key files, certificates, the database and the filters' data files, and write a "
        "test file in each folder the gateway writes to (database, register checkpoints, "
        "the development Maildir). Report the first problem as FILE: KEY: REASON and exit "
        "1. Run it as the user the gateway runs as. A pipeline without one of the policy "
        "filters (sender, fax_route, contacts, disclosure, media, approval, disclaimer) is an "
        "error unless [pipeline] allow_partial_pipeline = true (development only), which "
        "gives a WARNING line instead; so does [auth] password_hash_cost below 17, a "
        "[policy] reviewed_on more than 12 months ago (the policy is reviewed annually), "
        "and a notice file ([filter.disclaimer] file) whose words differ from the notice "
        "in the policy's text ([policy] file, by default the copy shipped with the "
        "gateway).",
    )
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)  # its errors already read "FILE: KEY: REASON"
    parts = open_parts(settings)  # so do these: serve runs the same function
    parts.store.close()
    warning = missing_policy(settings.pipeline.filters)
    if warning:
        print(f"WARNING: {settings.source}: pipeline.filters: {warning}", file=sys.stderr)
    cost, minimum = settings.auth.password_hash_cost, Auth().password_hash_cost
    if cost < minimum:
        print(
            f"WARNING: {settings.source}: auth.password_hash_cost: {cost} is below OWASP's "
            f"minimum for scrypt ({minimum}); for test accounts only",
            file=sys.stderr,
        )
    for line in policy_warnings(settings, datetime.now(UTC).date()):
        print(f"WARNING: {line}", file=sys.stderr)
    print(f"{args.config}: ok")
    return 0
