"""``c4f-gateway queue``: what waits for delivery, and what was set aside."""

from __future__ import annotations

import argparse
import sys

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings, local_time, logs_to_stderr, table
from gateway.crypto import Keyring
from gateway.errors import SpoolCorrupt
from gateway.queue.spool import QueueRow, Spool
from gateway.store import Store

STATE_WORDS = {
    "queued": "waiting",
    "corrupt": "SET ASIDE (failed integrity check)",
    "held": "HELD for approval",
    "unapproved": "SET ASIDE (released without a recorded approval)",
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "queue",
        help="list, show, retry or delete queued messages",
        description="Messages accepted but not yet delivered, and messages set "
        "aside because they failed their integrity check or were released from a hold "
        "without a recorded approval. Message content is "
        "never shown. Messages held for approval are listed too, but only a decision "
        "moves them: see `c4f-gateway held`.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="one line per queued message")
    show = actions.add_parser("show", help="one message's envelope and delivery state")
    show.add_argument("queue_id", help="the message's queue ID, as `queue list` shows it")
    retry = actions.add_parser(
        "retry",
        help="try delivering now (a set-aside message is checked again first)",
    )
    retry.add_argument(
        "queue_id", nargs="?", help="the message's queue ID, as `queue list` shows it (or --all)"
    )
    retry.add_argument("--all", action="store_true", help="every waiting message")
    delete = actions.add_parser("delete", help="remove a message from the queue for good")
    delete.add_argument("queue_id", help="the message's queue ID, as `queue list` shows it")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for a in (ls, show, retry, delete):
        add_config_arg(a)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logs_to_stderr()
    settings = load_settings(args)
    store = Store(settings.storage.database)
    try:
        return _run(args, Spool(store, Keyring.load(settings.storage.spool_key_file)))
    finally:
        store.close()


def _run(args: argparse.Namespace, spool: Spool) -> int:
    if args.action == "list":
        rows = spool.rows()
        if not rows:
            print("the queue is empty")
            return 0
        print(
            table(
                [
                    "Queue ID",
                    "Received",
                    "Staff",
                    "Size",
                    "Recipients left",
                    "Attempts",
                    "State",
                    "Next try",
                    "Last error",
                ],
                [
                    [
                        r.queue_id,
                        local_time(r.created),
                        r.staff or "(gateway)",
                        str(r.size),
                        str(r.pending),
                        str(r.attempts),
                        STATE_WORDS.get(r.state, r.state),
                        local_time(r.next_attempt) if r.state == "queued" else "-",
                        r.last_error.splitlines()[0][:60] if r.last_error else "",
                    ]
                    for r in rows
                ],
            )
        )
        return 0
    if args.action == "show":
        row = next((r for r in spool.rows() if r.queue_id == args.queue_id.upper()), None)
        if row is None:
            raise CLIError(f"{args.queue_id}: not in the queue (delivered or deleted)")
        print(
            f"Queue ID:   {row.queue_id}\nState:      {STATE_WORDS.get(row.state, row.state)}\n"
            f"Received:   {local_time(row.created)}\nStaff:      {row.staff or '(gateway)'}\n"
            f"Size:       {row.size} bytes\nAttempts:   {row.attempts}\n"
            f"Last error: {row.last_error or '-'}"
        )
        if row.state == "queued":
            try:
                msg = spool.load(row.queue_id)
            except SpoolCorrupt as exc:
                print(f"Integrity:  FAILED ({exc}); set aside")
                return 1
            if msg is not None:
                print(f"Sender:     {msg.mail_from or '<>'}")
                for i, rcpt in enumerate(msg.rcpt_tos):
                    print(f"Recipient:  {rcpt} ({'waiting' if i in msg.pending else 'done'})")
        return 0
    if args.action == "retry":
        if args.all:
            n = sum(spool.retry_now(r.queue_id) for r in spool.rows())
            print(f"{n} message(s) will be tried now")
            return 0
        if not args.queue_id:
            raise CLIError("name a queue ID or use --all")
        qid = args.queue_id.upper()
        if spool.retry_now(qid):
            print(f"{qid} will be tried now")
            return 0
        if spool.recheck(qid):
            print(f"{qid} passes its integrity check again and will be tried now")
            return 0
        row = next((r for r in spool.rows() if r.queue_id == qid), None)
        _refuse_held(row)
        if row is not None and row.state == "corrupt":
            raise CLIError(f"{qid}: still fails its integrity check; it stays set aside")
        if row is not None and row.state == "unapproved":
            raise CLIError(
                f"{qid}: was held and released without a recorded approval; it stays set "
                "aside: only an approval through `c4f-gateway held approve` sends it"
            )
        raise CLIError(f"{qid}: not in the queue")
    # delete
    qid = args.queue_id.upper()
    _refuse_held(next((r for r in spool.rows() if r.queue_id == qid), None))
    if not args.yes:
        if not sys.stdin.isatty():
            raise CLIError("deleting needs confirmation: add --yes")
        if input(f"Delete {qid} for good? It will not be delivered. [y/N] ").lower() != "y":
            print("nothing deleted")
            return 1
    if not spool.delete(qid):
        _refuse_held(next((r for r in spool.rows() if r.queue_id == qid), None))
        raise CLIError(f"{qid}: not in the queue")
    print(f"deleted {qid}")
    return 0


def _refuse_held(row: QueueRow | None) -> None:
    """A held message leaves only through a recorded decision (gateway.holds.service)."""
    if row is not None and row.state == "held":
        raise CLIError(
            f"{row.queue_id} is held for approval: use `c4f-gateway held refuse|approve`"
        )
