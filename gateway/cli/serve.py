"""``c4f-gateway serve``: run the listeners and delivery in ``[server] workers`` processes
(:mod:`gateway.supervisor`) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import ctypes

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
    keep_large_buffers_out_of_the_heap()
    return serve(settings)


def keep_large_buffers_out_of_the_heap() -> None:
    """Buffers of 128 KiB and more (a message, its sealed copy: up to 25 MB each) are
    mapped on their own and given back when freed. glibc otherwise raises this threshold
    after each large free (up to 32 MiB), so the copies of one large message then stay in
    the heap and the next message's add to them: memory_bench measured 430 MiB of peak
    RSS for a 25 MiB message, 330 MiB with this. Inherited by the worker processes."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc: nothing to set
    m_mmap_threshold = -3
    mallopt(m_mmap_threshold, 128 * 1024)
