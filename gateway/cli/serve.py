"""``c4f-gateway serve``: run the listeners and the delivery worker until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal

from gateway.cli.common import add_config_arg, load_settings
from gateway.logging import configure
from gateway.server import Gateway
from gateway.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="accept submissions and deliver the queue (runs until stopped)",
        description="Start the submission listeners and the delivery worker. "
        "SIGTERM or Ctrl-C stops it; queued mail stays safely queued. SIGHUP (systemctl "
        "reload) reads the TLS certificate and key again for new connections; if they do "
        "not load, the error is logged and the certificate in use is kept.",
    )
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    configure(settings.log.format, settings.log.level)
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_tls)  # certificate renewal
    for b in gateway.bound:
        print(f"c4f-gateway: listening ({b.kind}) on {b.host}:{b.port}", flush=True)
    await stop.wait()
    await gateway.stop()
