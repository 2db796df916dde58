"""``c4f-gateway disclaimer preview < message.eml``: print a message as it would be relayed.

For admins checking what recipients see: the message on stdin goes through the configured
disclaimer filter (the ``[filter.disclaimer]`` options of the config) and the result is
written to stdout as the exact bytes the gateway would relay (CRLF line ends). A message the
gateway would refuse prints the SMTP reply on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys

from filters.disclaimer import create
from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings
from gateway.errors import Refused
from gateway.pipeline import FilterContext

_LINE_END = re.compile(rb"\r?\n")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "disclaimer",
        help="the mandatory confidentiality notice",
        description="Work with the confidentiality notice the gateway adds to every message.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    preview = actions.add_parser(
        "preview",
        help="print a message (read from stdin) as the gateway would relay it",
        description="Read one message from stdin and print it with the notice added, exactly "
        "as it would be relayed. Files saved with LF line ends are read as CRLF.",
    )
    add_config_arg(preview)
    preview.set_defaults(func=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if "disclaimer" not in settings.pipeline.filters:
        print(
            f"{args.config}: warning: 'disclaimer' is not in pipeline.filters, so the gateway "
            "would relay this message WITHOUT the notice; showing it with the notice",
            file=sys.stderr,
        )
    context = FilterContext(settings=settings, store=None)
    notice_filter = create(dict(settings.filter.get("disclaimer", {})), context)
    content = _canonical(sys.stdin.buffer.read())
    try:
        result = notice_filter.apply(content)
    except Refused as r:
        print(r.reply(), file=sys.stderr)
        return 1
    sys.stdout.buffer.write(result.content)
    sys.stdout.buffer.flush()
    print(f"notice: {result.action}", file=sys.stderr)
    return 0


def _canonical(raw: bytes) -> bytes:
    """CRLF line ends, as SMTP delivers them (RFC 5321 2.3.8); a final line end added."""
    if not raw.strip():
        raise CLIError("no message on stdin")
    content = _LINE_END.sub(b"\r\n", raw)
    if b"\r" in content.replace(b"\r\n", b""):
        raise CLIError("the message contains a bare CR, which the gateway refuses")
    return content if content.endswith(b"\r\n") else content + b"\r\n"
