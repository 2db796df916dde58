"""How far long work has got, on the terminal: count, rate and time left, on stderr.

The library code of long commands (``register verify`` and ``purge``, ``contacts import``
and ``review``, ``backup``) reports through a plain callback, ``progress(done, total)``,
and knows nothing of terminals. :class:`Progress` is that callback for a command: it
redraws one line in place (``\\r``) at most a few times a second and always at the end,
and only when stderr is a terminal; in a pipe, a log or a cron mail it writes nothing,
nor with ``--quiet``. The answer itself stays on stdout, unchanged.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

REDRAW_EVERY = 0.2  # seconds between two redraws (the last one is always drawn)


def add_quiet_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line on the terminal (none is shown when stderr is not a terminal)",
    )


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _rate(per_second: float) -> str:
    return f"{per_second:.0f}" if per_second >= 10 else f"{per_second:.1f}"


def line(what: str, unit: str, done: int, total: int, elapsed: float) -> str:
    """The text of one progress line (without the ``\\r``)."""
    total = max(total, done)
    share = f" ({100 * done // total}%)" if total else ""
    head = f"{what}: {done}/{total} {unit}{share}"
    if done >= total:
        rate = f", {_rate(done / elapsed)} {unit}/s" if elapsed > 0 and done else ""
        return f"{head}{rate}, done in {duration(elapsed)}"
    if done == 0 or elapsed <= 0:
        return f"{head}, time left not yet known"
    per_second = done / elapsed
    left = (total - done) / per_second
    return f"{head}, {_rate(per_second)} {unit}/s, about {duration(left)} left"


class Progress:
    """``progress(done, total)`` for a command; use it as a context manager so the line is
    ended before the command prints its answer."""

    def __init__(
        self,
        what: str,
        unit: str,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = not quiet and _is_terminal(self.stream)
        self.clock = clock
        self.started = clock()
        self._drawn_at: float | None = None  # when the open line was last drawn
        self._width = 0
        self._last = (-1, -1)

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or (done, total) == self._last:
            return
        now = self.clock()
        finished = done >= total
        if not finished and self._drawn_at is not None and now - self._drawn_at < REDRAW_EVERY:
            return
        text = line(self.what, self.unit, done, total, now - self.started)
        # Spaces wipe the end of a longer line drawn before.
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
        self._drawn_at = now
        self._last = (done, total)
        if finished:
            # Ended at once: what the work logs or prints next starts on a line of its own.
            self.end()

    def end(self) -> None:
        """End the line (once), so what follows starts on a line of its own."""
        if self._drawn_at is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn_at = None
            self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end()


def progress_for(args: argparse.Namespace, what: str, unit: str) -> Progress:
    """The progress line of a command with :func:`add_quiet_arg`."""
    return Progress(what, unit, quiet=bool(getattr(args, "quiet", False)))


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
