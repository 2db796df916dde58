"""The notices about held messages, queued inside the transaction of the step they report.

Each names the queue ID and says what happened and what to do next; none carries the
message's subject, recipients or body (see :mod:`gateway.mail.notices`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.directory.staff import StaffDirectory
from gateway.holds.held import HeldMessage
from gateway.mail.notices import build_notice
from gateway.queue.spool import Spool, new_queue_id
from gateway.register.formats import local_time

DECIDE = (
    "A line manager or admin decides in the review console (Held messages) or with "
    "`c4f-gateway held approve|refuse ID --note TEXT`."
)


class Notifier:
    def __init__(self, spool: Spool, staff: StaffDirectory, hostname: str, sender: str) -> None:
        """``sender``: the From: and MAIL FROM of every notice (``Settings.notices_from``)."""
        self.spool = spool
        self.staff = staff
        self.hostname = hostname
        self.sender = sender

    def held(self, conn: sqlite3.Connection, h: HeldMessage) -> None:
        who = (
            ", ".join(h.managers)
            if h.managers
            else "an admin (you have no line manager configured)"
        )
        self._send(
            conn,
            [h.staff],
            f"Held for approval: your message {h.queue_id}",
            [
                f"Your message {h.queue_id} has been received and is held until a line "
                "manager approves it. Nothing has been sent yet.",
                "",
                f"Why it is held: {'; '.join(h.reasons)}.",
                f"Who can approve it: {who}.",
                f"If nobody approves it by {local_time(h.expires_at)} it will not be sent.",
                "",
                "You can withdraw it in the review console (Held messages).",
            ],
            "held",
            h.queue_id,
        )

    def refused(self, conn: sqlite3.Connection, h: HeldMessage, actor: str, note: str) -> None:
        self._send(
            conn,
            [h.staff],
            f"Not sent: your message {h.queue_id} was refused",
            [
                f"Your message {h.queue_id}, held for approval since "
                f"{local_time(h.held_at)}, was refused by {actor} and has been deleted. "
                "Nothing was sent.",
                "",
                f"Their note: {note}",
            ],
            "refused",
            h.queue_id,
        )

    def expired(self, conn: sqlite3.Connection, h: HeldMessage) -> None:
        lines = [
            f"The message {h.queue_id} from {h.staff}, held for approval since "
            f"{local_time(h.held_at)}, was not approved in time. It has been deleted and "
            "was not sent. The sender may send it again.",
        ]
        subject = f"Not sent: held message {h.queue_id} expired"
        self._send(conn, [h.staff], subject, lines, "expired", h.queue_id)
        deciders = list(h.managers) or self._admins(h.staff)
        if deciders:
            self._send(conn, deciders, subject, lines, "expired", h.queue_id)

    def reminders(
        self, conn: sqlite3.Connection, waiting: Sequence[HeldMessage], now: float
    ) -> int:
        per: dict[str, list[HeldMessage]] = {}
        for h in waiting:
            for login in h.managers or tuple(self._admins(h.staff)):
                per.setdefault(login, []).append(h)
        for login, items in per.items():
            lines = [f"{len(items)} message(s) are waiting for your approval:", ""]
            lines += [
                f"  {h.queue_id}  from {h.staff}, held since {local_time(h.held_at)}, "
                f"expires {local_time(h.expires_at)}"
                + ("  (no line manager configured: admins only)" if h.admin_only else "")
                for h in items
            ]
            lines += ["", DECIDE]
            subject = f"Reminder: {len(items)} message(s) waiting for approval"
            self._send(conn, [login], subject, lines, "reminder", "")
        return len(per)

    def _admins(self, sender: str) -> list[str]:
        return [m.login for m in self.staff.list() if m.role == "admin" and m.login != sender]

    def _send(
        self,
        conn: sqlite3.Connection,
        to: list[str],
        subject: str,
        lines: list[str],
        kind: str,
        about: str,
    ) -> None:
        content = build_notice(
            hostname=self.hostname, sender=self.sender, to=to, subject=subject, lines=lines
        )
        self.spool.insert(
            conn,
            queue_id=new_queue_id(),
            staff="",
            peer="",
            # RFC 5321 4.5.5: a notice is not a DSN, so it has a real reverse-path; one
            # that cannot be delivered bounces to that address (the operator's).
            mail_from=self.sender,
            rcpt_tos=to,
            content=content,
            annotations={"notice": kind, "notice_for": about},
        )
