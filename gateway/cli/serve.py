"""``c4f-gateway serve``: run the listeners and delivery in ``[server] workers`` processes
(:mod:`gateway.supervisor`) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse

from gateway.cli.common import add_config_arg, load_settings
from gateway.logging import configure
from gateway.supervisor import serve


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="accept submissions and deliver the queue (runs until stopped)",
        description="Start the submission listeners and delivery in [server] workers "
        "processes (default: one per CPU) that share the listening ports under one "
        "supervisor, which restarts a worker that dies; each worker delivers the queue, "
        "taking messages with a lease ([delivery] lease) so no two send the same one. "
        "SIGTERM or Ctrl-C stops it; queued mail stays safely queued. SIGHUP (systemctl "
        "reload) reads the TLS certificate and key again for new connections; if they do "
        "not load, the error is logged and the certificate in use is kept.",
    )
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    configure(settings.log.format, settings.log.level)
    return serve(settings)
