"""The notices about held messages, queued inside the transaction of the step they report.

Each names the queue ID and says what happened and what to do next. None carries the
body (see :mod:`gateway.mail.notices`); only the sender's own notice names the subject
and recipients, since mail programs never show a queue ID; approvers are told the
recipients' organisations and given a link to the console, where they read the rest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.directory.staff import StaffDirectory
from gateway.holds.held import HeldMessage
from gateway.mail.notices import build_notice
from gateway.queue.spool import Spool, new_queue_id
from gateway.register.fields import recipients_of
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

    def held(
        self,
        conn: sqlite3.Connection,
        h: HeldMessage,
        *,
        subject: str,
        recipients: Sequence[str],
        hint: str,
        console_url: str,
    ) -> None:
        """To the sender, who wrote it: which message (its subject, recipients and time, as
        Outlook and Thunderbird never show a queue ID), why it waits, and how to avoid that."""
        who = ", ".join(h.managers) or (
            # An admin's message waits for another admin, as intended: no gap to point out.
            "another admin"
            if h.staff in self._admins("")
            else "an admin (you have no line manager configured)"
        )
        where = (
            f"{console_url.rstrip('/')}/held/{h.queue_id}"
            if console_url
            else "the review console (Held messages)"
        )
        self._send(
            conn,
            [h.staff],
            f'Held for approval: your message "{_short(subject)}"',
            [
                f'Your message "{subject}" to {", ".join(recipients)}, sent at '
                f"{local_time(h.held_at)} (local time), is held until a line manager approves "
                "it. Nothing has been sent yet.",
                "",
                f"Why it is held: {'; '.join(h.reasons)}.",
                f"Who can approve it: {who}.",
                f"If nobody approves it by {local_time(h.expires_at)} it will not be sent.",
                *([f"Next time: {hint}."] if hint else []),
                "",
                f"You can see or withdraw it in {where} (reference {h.queue_id}).",
            ],
            "held",
            h.queue_id,
        )

    def approvers(
        self,
        conn: sqlite3.Connection,
        h: HeldMessage,
        *,
        organisations: Sequence[str],
        urgent: bool,
        leads: Sequence[str],
        console_url: str,
    ) -> list[str]:
        """At once, to whoever can decide (the sender's line managers, else the admins)
        and, for a safeguarding hold, the safeguarding leads (default: every admin).
        Never the subject or the body: who, when, why, to which organisations, where."""
        deciders = list(h.managers) or self._admins(h.staff)
        told = list(dict.fromkeys(deciders))
        if urgent:
            told += [x for x in (list(leads) or self._admins(h.staff)) if x not in told]
        subject = f"Held for your approval: a message from {h.staff}"
        lines = [
            f"A message from {h.staff} is held until a line manager or admin decides."
            + (" It is flagged safeguarding." if urgent else ""),
            "",
            f"Held since: {local_time(h.held_at)} (local time).",
            f"Why it is held: {'; '.join(h.reasons)}.",
            f"It goes to: {', '.join(organisations) or 'recipients inside the centre'}.",
            f"Who can decide: {', '.join(deciders) or 'an admin'}.",
            f"If nobody approves it by {local_time(h.expires_at)} it will not be sent.",
            "",
            _where(console_url, h.queue_id),
        ]
        return self._each(conn, told, h, _urgent(subject, urgent), lines, "approval-needed")

    def escalated(
        self, conn: sqlite3.Connection, h: HeldMessage, urgent: bool, console_url: str
    ) -> list[str]:
        """Undecided past its time: the admins are told (once; gateway.holds.escalation)."""
        subject = f"Still undecided: a held message from {h.staff}"
        lines = [
            f"A message from {h.staff}, held since {local_time(h.held_at)}, is still waiting "
            f"for a decision. Who can decide: {', '.join(h.managers) or 'an admin'}.",
            f"Why it is held: {'; '.join(h.reasons)}.",
            f"If nobody approves it by {local_time(h.expires_at)} it will not be sent.",
            "",
            _where(console_url, h.queue_id),
        ]
        admins = self._admins(h.staff)
        return self._each(conn, admins, h, _urgent(subject, urgent), lines, "escalated")

    def _each(
        self,
        conn: sqlite3.Connection,
        logins: Sequence[str],
        h: HeldMessage,
        subject: str,
        lines: list[str],
        kind: str,
    ) -> list[str]:
        """One notice per person (none names another reader); never to the sender."""
        told = [x for x in logins if x != h.staff]
        for login in told:
            self._send(conn, [login], subject, lines, kind, h.queue_id)
        return told

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
        admins = self._admins("")  # read once, not once per message
        for h in waiting:
            for login in h.managers or [a for a in admins if a != h.staff]:
                per.setdefault(login, []).append(h)
        for login, items in per.items():
            lines = [f"{len(items)} message(s) are waiting for your approval:", ""]
            lines += [
                f"  {h.queue_id}  from {h.staff}, held since {local_time(h.held_at)}, "
                f"expires {local_time(h.expires_at)}"
                + (
                    "  (no line manager configured: admins only)"
                    if h.admin_only and h.staff not in admins
                    else ""
                )
                for h in items
            ]
            lines += ["", DECIDE]
            subject = f"Reminder: {len(items)} message(s) waiting for approval"
            self._send(conn, [login], subject, lines, "reminder", "")
        return len(per)

    def duties(
        self, conn: sqlite3.Connection, login: str, subject: str, lines: list[str], day: str
    ) -> None:
        """The daily list of register duties overdue (:mod:`gateway.holds.duties`), for
        ``day`` (YYYY-MM-DD, recorded with it so that a day has one)."""
        self._send(conn, [login], subject, lines, "duties", day)

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


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split()) or "(no subject)"
    return text if len(text) <= width else text[: width - 1] + "…"


def _urgent(subject: str, urgent: bool) -> str:
    return "URGENT (safeguarding): " + subject if urgent else subject


def _where(console_url: str, queue_id: str) -> str:
    if console_url:
        return f"Decide in the review console: {console_url.rstrip('/')}/held/{queue_id}"
    return (
        f"Decide in the review console (Held messages, {queue_id}) or with "
        f"`c4f-gateway held approve|refuse {queue_id} --by LOGIN`."
    )


def organisations_of(rcpt_tos: Sequence[str], annotations: dict[str, Any]) -> list[str]:
    """Where a held message goes, by organisation (else domain): what approvers are told."""
    out = []
    for r in recipients_of(rcpt_tos, annotations):
        name = str(r.get("organisation") or "") or str(r["address"]).rpartition("@")[2]
        if name not in out:
            out.append(name)
    return out
