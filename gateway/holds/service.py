"""Messages held for line-manager approval: hold, approve, refuse, withdraw, expire, remind.

Policy, "Disclosing information": staff make their line manager aware of, and record,
concerns about a disclosure. :mod:`filters.approval` decides what is held; this module
keeps the held messages and every decision, and it fails closed:

- a held message is spooled (sealed) like any other but in state ``held``, which the
  delivery worker never picks up: only :meth:`Holds.approve` moves it on;
- only one of the sender's line managers (an account with the manager or admin role) or
  an admin may decide, never the sender; a sender with no manager can be released only
  by an admin (the console shows that gap);
- approving a message sent without consent needs a note (the reason for sharing);
- each decision, its register entry and any notice it sends are ONE transaction;
- refused, withdrawn and expired messages are removed and their pages zeroed (shredded);
  nothing is ever delivered by timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import structlog

from gateway.crypto import Keyring
from gateway.directory.staff import StaffDirectory, StaffMember
from gateway.errors import SpoolCorrupt
from gateway.events import Accepted, HoldAction, HoldEvent, Recorder
from gateway.holds import escalation
from gateway.holds.held import HeldDetails, HeldMessage
from gateway.holds.notify import Notifier, organisations_of
from gateway.holds.table import HoldRow, HoldsTable
from gateway.queue.spool import Spool
from gateway.register.fields import disclosure_fields, recipients_of
from gateway.register.message import Summary, summarise
from gateway.settings import Settings
from gateway.settings.web import web_settings
from gateway.store import Store

log = structlog.get_logger("gateway.holds")

MAX_NOTE = 2000

# What an approver may record about consent ("": leave the status the message was sent with).
APPROVAL_CONSENT = ("", "obtained", "refused", "not-sought")
REMIND_EVERY = 86400.0  # policy: reminded daily


class HoldError(Exception):
    """A decision that cannot be made; ``str(exc)`` says why, in words for the user."""


class Holds:
    @classmethod
    def open(cls, store: Store, settings: Settings, recorder: Recorder) -> Holds:
        """For the CLI and the console: the same objects ``serve`` builds, on ``store``."""
        spool = Spool(store, Keyring.load(settings.storage.spool_key_file), recorder)
        return cls(
            spool,
            StaffDirectory(store),
            settings.hostname,
            sender=settings.notices_from,
            console_url=web_settings(settings).public_url,
        )

    def __init__(
        self,
        spool: Spool,
        staff: StaffDirectory,
        hostname: str,
        *,
        sender: str | None = None,
        console_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``sender``: where notices come from (``Settings.notices_from``; None, in tests
        and benchmarks only: postmaster@ ``hostname``). ``console_url``: the console's
        address for the links in notices (``[web] public_url``)."""
        self.console_url = console_url
        self.spool = spool
        self.store = spool.store
        self.staff = staff
        self.clock = clock
        self.notify = Notifier(spool, staff, hostname, sender or f"postmaster@{hostname}")
        self.table = HoldsTable(self.store, spool.keyring)
        self.store.ensure(escalation.SCHEMA)

    # -- holding -----------------------------------------------------------------------

    def accept(self, **message: Any) -> Accepted:
        """Spool a message that the approval policy holds (``annotations["hold"]``), with
        its hold row, its register entry and the sender's notice, in one transaction."""
        hold = message["annotations"]["hold"]

        def held(conn: sqlite3.Connection, event: Accepted) -> None:
            reasons = tuple(str(r) for r in hold["reasons"])
            self.table.insert(
                conn,
                queue_id=event.queue_id,
                staff=event.staff,
                held_at=event.received_at,
                expires_at=event.received_at + float(hold["expires_after"]),
                needs_note=bool(hold["needs_note"]),
                reasons=reasons,
            )
            self.spool.recorder.hold(
                conn, HoldEvent(event.queue_id, event.received_at, "held", "", reasons=reasons)
            )
            row = self.one(conn, event.queue_id)
            # The register's summary was read before the transaction (Accepted.summary);
            # without a register nothing read it yet.
            summary = event.summary if isinstance(event.summary, Summary) else None
            self.notify.held(
                conn,
                row,
                subject=(summary or summarise(event.content)).subject,
                recipients=list(event.rcpt_tos),
                hint=str(hold.get("hint") or ""),
                console_url=self.console_url,
            )
            urgent = bool(hold.get("urgent"))
            self.notify.approvers(
                conn,
                row,
                organisations=organisations_of(event.rcpt_tos, event.annotations),
                urgent=urgent,
                leads=[str(x) for x in hold.get("leads", [])],
                console_url=self.console_url,
            )
            if hold.get("escalate_after"):
                due = event.received_at + float(hold["escalate_after"])
                escalation.schedule(conn, event.queue_id, due, urgent)

        accepted = self.spool.accept(**message, held=True, also=held)
        log.info("message_held", queue_id=accepted.queue_id, staff=accepted.staff)
        return accepted

    # -- reading -----------------------------------------------------------------------

    def pending(self, viewer: StaffMember | None = None) -> list[HeldMessage]:
        """Held messages, oldest first: all of them (``viewer`` None, the CLI), or those
        ``viewer`` may decide on or withdraw."""
        return self._visible(viewer, reasons=True)

    def count(self, viewer: StaffMember) -> int:
        """How many :meth:`pending` would list for ``viewer`` (nothing decrypted): the
        console's navigation asks on every page."""
        return self.table.count_sent_by(self._senders_for(viewer, self._deciders()))

    def _visible(self, viewer: StaffMember | None, *, reasons: bool) -> list[HeldMessage]:
        deciders = self._deciders()
        senders = None if viewer is None else self._senders_for(viewer, deciders)
        found = [self._held(r, deciders) for r in self.table.sent_by(senders, reasons=reasons)]
        return [h for h in found if viewer is None or self.may_see(viewer, h)]

    @staticmethod
    def _senders_for(viewer: StaffMember, deciders: dict[str, tuple[str, ...]]) -> set[str] | None:
        """Whose held messages ``viewer`` may see (None: everyone's), as :meth:`may_see`
        decides it, so the table is searched by sender (a keyed hash) rather than read whole."""
        if viewer.role == "admin":
            return None
        managed = {s for s, m in deciders.items() if viewer.login in m}
        return {viewer.login} | (managed if viewer.role == "manager" else set())

    def get(self, queue_id: str) -> HeldMessage | None:
        found = self.table.one(queue_id.upper())
        return self._held(found, self._deciders()) if found else None

    def details(self, held: HeldMessage) -> HeldDetails:
        """Decrypt the held message's details. Call only for someone :meth:`may_see` allows."""
        try:
            msg = self.spool.read(held.queue_id)
        except SpoolCorrupt:
            raise HoldError(
                f"{held.queue_id} fails its integrity check and cannot be shown; ask an admin"
            ) from None
        if msg is None:
            raise HoldError(f"no message {held.queue_id} is waiting for approval")
        found = disclosure_fields(msg.annotations)
        summary = summarise(msg.content)
        return HeldDetails(
            held=held,
            mail_from=msg.mail_from,
            recipients=recipients_of(msg.rcpt_tos, msg.annotations),
            consent=str(found.get("consent", "not-recorded")),
            reason=str(found.get("reason", "")),
            family=str(found.get("family", "")),
            nature=str(found.get("nature", "")),
            safeguarding=bool(found.get("safeguarding", False)),
            external=bool(found.get("external", True)),
            subject=summary.subject,
            attachments=[str(a["name"]) for a in summary.attachments],
            size=len(msg.content),
        )

    def may_see(self, viewer: StaffMember, held: HeldMessage) -> bool:
        return held.staff == viewer.login or self.refusal_to_decide(viewer, held) is None

    def refusal_to_decide(self, actor: StaffMember | None, held: HeldMessage) -> str | None:
        """None when ``actor`` may approve or refuse ``held``; else why not."""
        if actor is None:
            return "there is no such staff account"
        if actor.login == held.staff:
            return "nobody may approve or refuse their own message"
        if actor.role == "admin":
            return None
        if held.admin_only:
            return f"{held.staff} has no line manager configured: only an admin can decide"
        if actor.role == "manager" and actor.login in held.managers:
            return None
        return (
            f"{actor.login} is not a line manager of {held.staff}; "
            f"ask {', '.join(held.managers)} or an admin"
        )

    # -- deciding ----------------------------------------------------------------------

    def approve(self, queue_id: str, actor: str, note: str = "", consent: str = "") -> HeldMessage:
        """Release the message for delivery; the approver, the note and the consent status
        they record (``obtained``, ``refused``, ``not-sought``; "" leaves it as sent) go
        into the register, which then counts the note as the reason for sharing."""
        if consent not in APPROVAL_CONSENT:
            raise HoldError(f"consent must be one of {', '.join(c for c in APPROVAL_CONSENT if c)}")
        return self._decide(queue_id, actor, "approved", note, consent)

    def refuse(self, queue_id: str, actor: str, note: str = "") -> HeldMessage:
        """Remove the message for good and tell the sender, with the note."""
        return self._decide(queue_id, actor, "refused", note)

    def withdraw(self, queue_id: str, actor: str) -> HeldMessage:
        """The sender takes back their own held message."""
        return self._decide(queue_id, actor, "withdrawn", "")

    def _decide(
        self, queue_id: str, actor: str, action: HoldAction, note: str, consent: str = ""
    ) -> HeldMessage:
        note = " ".join(note.split())
        if len(note) > MAX_NOTE:
            raise HoldError(f"the note is too long (at most {MAX_NOTE} characters)")
        member = self.staff.get(actor)
        with self.store.transaction() as conn:
            held = self.one(conn, queue_id.upper())
            now = self.clock()
            if action == "withdrawn":
                if member is None or member.login != held.staff:
                    raise HoldError("only the sender may withdraw a held message")
            else:
                why = self.refusal_to_decide(member, held)
                if why:
                    raise HoldError(why)
                if now >= held.expires_at:
                    raise HoldError(f"{held.queue_id} has expired; it will not be sent")
                if (
                    action == "approved"
                    and not note
                    and consent != "obtained"
                    and (held.needs_note or consent in ("refused", "not-sought"))
                ):
                    raise HoldError(
                        "consent was refused, not sought or not recorded: approving needs a "
                        "note giving the reason for sharing (or record that consent was "
                        "obtained)"
                    )
                if action == "refused" and not note:
                    raise HoldError("refusing needs a note for the sender")
            assert member is not None
            self.spool.recorder.hold(
                conn,
                HoldEvent(held.queue_id, now, action, member.login, note=note, consent=consent),
            )
            self.table.remove(conn, held.queue_id)
            if action == "approved":
                # The proof of approval is written here, in the register entry's transaction.
                if not self.spool.release(conn, held.queue_id, member.login):
                    raise HoldError(f"{held.queue_id} is no longer held")
            else:
                self.spool.discard(conn, held.queue_id)
                if action == "refused":
                    self.notify.refused(conn, held, member.login, note)
        if action != "approved":
            self.spool.shred(held.queue_id)
        log.info("hold_decided", queue_id=held.queue_id, action=action, actor=member.login)
        return held

    # -- the daily jobs ----------------------------------------------------------------

    def expire_due(self, now: float | None = None) -> list[str]:
        """Turn every held message past its time into refused; never delivered."""
        now = self.clock() if now is None else now
        done = []
        for queue_id in self.table.expired(now):
            with self.store.transaction() as conn:
                try:
                    held = self.one(conn, queue_id)
                except HoldError:
                    continue  # decided meanwhile
                self.spool.recorder.hold(conn, HoldEvent(held.queue_id, now, "expired", ""))
                self.table.remove(conn, held.queue_id)
                self.spool.discard(conn, held.queue_id)
                self.notify.expired(conn, held)
            done.append(held.queue_id)
            log.info("hold_expired", queue_id=held.queue_id, staff=held.staff)
        if done:
            self.spool.shred(*done)
        return done

    def escalate(self, now: float | None = None) -> int:
        """Tell the admins of every held message undecided past its escalation time (once
        each); returns how many were escalated."""
        now = self.clock() if now is None else now
        with self.store.transaction() as conn:
            due = escalation.take_due(conn, now)
            for queue_id, urgent in due:
                self.notify.escalated(conn, self.one(conn, queue_id), urgent, self.console_url)
        if due:
            log.warning("holds_escalated", held=len(due))
        return len(due)

    def remind(self, now: float | None = None) -> int:
        """One reminder per approver for messages waiting a day or more since the last;
        returns how many reminders were queued (restart-safe: the time is kept)."""
        now = self.clock() if now is None else now
        with self.store.transaction() as conn:
            deciders = self._deciders()
            rows = self.table.not_reminded_since(conn, now - REMIND_EVERY)
            waiting = [self._held(r, deciders) for r in rows]
            sent = self.notify.reminders(conn, waiting, now)
            self.table.reminded(conn, [h.queue_id for h in waiting], now)
        if sent:
            log.info("hold_reminders", reminders=sent, waiting=len(waiting))
        return sent

    # -- internals ---------------------------------------------------------------------

    def one(self, conn: sqlite3.Connection, queue_id: str) -> HeldMessage:
        """The held message ``queue_id``, read in the caller's transaction; HoldError if
        there is none."""
        row = self.table.one(queue_id, conn)
        if row is None:
            raise HoldError(f"no message {queue_id} is waiting for approval")
        return self._held(row, self._deciders())

    def _deciders(self) -> dict[str, tuple[str, ...]]:
        """Each account's line managers who may decide, from one read of the staff table.
        Only an account with the manager or admin role counts: a gap shows as admins only."""
        members = {m.login: m for m in self.staff.list()}
        may = {login for login, m in members.items() if m.role in ("manager", "admin")}
        return {login: tuple(x for x in m.managers if x in may) for login, m in members.items()}

    @staticmethod
    def _held(row: HoldRow, deciders: dict[str, tuple[str, ...]]) -> HeldMessage:
        return HeldMessage(
            queue_id=row.queue_id,
            staff=row.staff,
            held_at=row.held_at,
            expires_at=row.expires_at,
            needs_note=row.needs_note,
            reasons=row.reasons,
            managers=deciders.get(row.staff, ()),
        )
