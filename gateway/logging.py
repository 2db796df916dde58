"""structlog set-up: JSON lines on stdout by default (journald friendly).

What may be logged: queue IDs, staff logins, client addresses, counts, sizes, reply codes.
What never is: message bodies, subjects, passwords, keys, AUTH exchanges.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import structlog

_WRITE = threading.Lock()


class LineLogger:
    """Writes each rendered line whole, message and newline in one call, to the stream that
    is ``sys.stdout`` (or ``sys.stderr``) at that moment. serve's workers share stdout: a
    line written in two calls (structlog's PrintLogger prints the newline apart) can be
    split by another worker's line."""

    def __init__(self, stream: str) -> None:
        self.stream = stream

    def msg(self, message: str) -> None:
        out = getattr(sys, self.stream)
        with _WRITE:
            out.write(message + "\n")
            out.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def line_logger(stream: str) -> Any:
    """A structlog ``logger_factory`` writing whole lines to ``sys.<stream>``."""
    return lambda *args: LineLogger(stream)


def configure(fmt: str = "json", level: str = "info") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=line_logger("stdout"),
        cache_logger_on_first_use=False,
    )
    # aiosmtpd logs every command line at INFO through the stdlib ('mail.log'), including
    # AUTH continuation lines in some paths: keep it quiet; our own events say what matters.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
