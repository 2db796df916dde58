"""``c4f-gateway check-config``: validate everything ``serve`` would load, then exit."""

from __future__ import annotations

import argparse

from gateway.cli.common import add_config_arg, load_settings
from gateway.crypto import Keyring
from gateway.pipeline import FilterContext, load_filters
from gateway.server import make_transport
from gateway.store import Store
from gateway.tls import server_context


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="check a config file, its keys, certificates and filters; exit 1 on any error",
        description="Load the config as 'serve' would (unknown keys are errors) and report "
        "the first problem as FILE: KEY: REASON.",
    )
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    Keyring.load(settings.storage.spool_key_file)
    server_context(settings.tls.cert_file, settings.tls.key_file)
    make_transport(settings)
    store = Store(settings.storage.database)
    try:
        load_filters(
            settings.pipeline.filters,
            settings.filter,
            FilterContext(settings=settings, store=store),
        )
    finally:
        store.close()
    print(f"{args.config}: ok")
    return 0
