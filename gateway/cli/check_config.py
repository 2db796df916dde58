"""``c4f-gateway check-config``: validate everything ``serve`` would load, then exit.

Every problem is reported as ``FILE: KEY: REASON`` (the config file, the setting that
leads to the problem, what is wrong), so an admin knows which line to fix.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from gateway.cli.common import add_config_arg, load_settings
from gateway.crypto import Keyring
from gateway.errors import ConfigError
from gateway.pipeline import FilterContext, load_filters
from gateway.server import make_transport
from gateway.store import Store
from gateway.tls import server_context

T = TypeVar("T")
_NAMES_KEY = re.compile(r"^[a-z_]+(\.[a-z_]+)*: ")
# The filters that enforce the confidentiality policy, and what is lost without each.
# Leaving one out is allowed (tests and staged roll-outs do), but never silently.
POLICY_FILTERS = {
    "fax_route": "fax-to-email addresses are not refused",
    "contacts": "recipients are not checked against the approved contacts",
    "disclosure": "consent and safeguarding tags are not read",
    "approval": "messages are not held for approval",
    "disclaimer": "the mandatory confidentiality notice is not added",
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a config file, its keys, certificates and filters; exit 1 on any error",
        description="Load the config as 'serve' would (unknown keys are errors) and report "
        "the first problem as FILE: KEY: REASON. A pipeline without one of the policy "
        "filters (fax_route, contacts, disclosure, approval, disclaimer) gets a WARNING "
        "line saying what is not enforced, but still exits 0.",
    )
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)  # its errors already read "FILE: KEY: REASON"
    config = str(args.config)

    def check(key: str, step: Callable[[], T]) -> T:
        try:
            return step()
        except (ConfigError, sqlite3.Error, OSError) as exc:
            reason = str(exc)
            # Some errors already name their key ("filter.NAME: ...", "tls: ...").
            if not _NAMES_KEY.match(reason):
                reason = f"{key}: {reason}"
            raise ConfigError(f"{config}: {reason}") from exc

    check("storage.spool_key_file", lambda: Keyring.load(settings.storage.spool_key_file))
    check("tls", lambda: server_context(settings.tls.cert_file, settings.tls.key_file))
    key = "upstream" if settings.delivery.transport == "smtp" else "delivery.maildir"
    check(key, lambda: make_transport(settings))
    store = check("storage.database", lambda: Store(settings.storage.database))
    try:
        context = FilterContext(settings=settings, store=store)
        check(
            "filter",
            lambda: load_filters(settings.pipeline.filters, settings.filter, context),
        )
    finally:
        store.close()
    warning = missing_policy(settings.pipeline.filters)
    if warning:
        print(f"WARNING: {config}: pipeline.filters: {warning}", file=sys.stderr)
    print(f"{config}: ok")
    return 0


def missing_policy(chain: Sequence[str]) -> str:
    """Which policy filters ``chain`` lacks and what that means; empty when it has them all."""
    missing = [name for name in POLICY_FILTERS if name not in chain]
    if not missing:
        return ""
    return (
        f"policy filter(s) not in the pipeline: {', '.join(missing)}; "
        + "; ".join(POLICY_FILTERS[name] for name in missing)
        + " (the centre's confidentiality policy is not fully enforced)"
    )
