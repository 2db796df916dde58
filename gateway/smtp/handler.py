"""Translation from SMTP phases to the filter pipeline, the spool and the register.

No policy lives here, only the order of things and the replies:

- MAIL: disk space (452 4.3.1), then the filters that judge the sender;
- RCPT: recipient limit (452 4.5.3), address hygiene (553 5.1.3), then the recipient filters;
  a refused recipient is answered at once and remembered;
- DATA: bare CR/LF/NUL (550 5.6.0, SMTP smuggling), all-or-nothing (554 5.7.1 when any
  recipient of the transaction was refused), header sanity (554 5.6.0: malformed, or a
  field RFC 5322 3.6 allows once given twice), the content filters, then Bcc: and
  Resent-Bcc: removed, Received: added, sealed into the spool; 250 only after the commit
  (shared with other sessions' messages: group commit) that covers it.
  A message the approval policy holds is spooled as held (:mod:`gateway.holds.service`) and the
  250 says so.

Every refusal goes to the recorder (the disclosure register). A fault we cannot judge is
451 4.3.0: never 250.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any, Literal

import structlog

from gateway.envelope import Session, Transaction
from gateway.errors import Refused, TempFailure
from gateway.events import RefusedEvent
from gateway.holds.service import Holds
from gateway.mail.content import Content
from gateway.mail.headers import (
    CRLF,
    MalformedHeader,
    body_start,
    header_fields,
    repeated_singletons,
    without,
)
from gateway.mail.splices import Splices
from gateway.pipeline import Pipeline, spliced
from gateway.queue.delivery import DeliveryWorker
from gateway.queue.spool import Message, Spool, new_queue_id
from gateway.settings import Settings

log = structlog.get_logger("gateway.smtp")

Phase = Literal["mail", "rcpt", "data"]
_BAD_ADDRESS_CHARS = re.compile(r"[\x00-\x20\x7f]")
_HELO_NAME = re.compile(r"^[A-Za-z0-9.\-:\[\]_]{1,255}$")


class Handler:
    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        spool: Spool,
        holds: Holds,
        delivery: DeliveryWorker,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.spool = spool
        self.holds = holds
        self.delivery = delivery  # this process's: what it accepts, it delivers
        limits = settings.limits
        self.min_free = limits.min_free_space or int(1.5 * limits.max_message_size)

    # -- greeting ----------------------------------------------------------------------

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        if not _HELO_NAME.match(hostname):
            return "501 5.5.4 Invalid HELO name"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # HDR-1: a name with CR, NUL or spaces, or over 255 octets, never reaches a header.
        if not _HELO_NAME.match(hostname):
            session.host_name = None
            return ["501 5.5.4 Invalid EHLO name"]
        session.host_name = hostname
        return [*responses[:-1], "250-ENHANCEDSTATUSCODES", responses[-1]]

    # -- transaction -------------------------------------------------------------------

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        tx = Transaction(
            session=_session(server, session), queue_id=new_queue_id(), mail_from=address
        )
        envelope.tx = tx
        if _BAD_ADDRESS_CHARS.search(address):
            return await self._refuse(tx, "mail", Refused(553, "5.1.7", "Malformed sender address"))
        try:
            self.spool.check_space(self.min_free)
            await self.pipeline.on_mail(tx)
        except Refused as r:
            envelope.tx = None
            return await self._refuse(tx, "mail", r)
        except TempFailure as t:
            envelope.tx = None
            return t.reply()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        tx: Transaction = envelope.tx
        if len(envelope.rcpt_tos) >= self.settings.limits.max_recipients:
            return "452 4.5.3 Too many recipients; send the rest in another message"
        if _BAD_ADDRESS_CHARS.search(address) or address == "<>":
            return await self._refuse(
                tx, "rcpt", Refused(553, "5.1.3", "Malformed recipient address"), address
            )
        try:
            await self.pipeline.on_rcpt(tx, address)
        except Refused as r:
            tx.annotations["refused_recipients"] = tx.annotations.get("refused_recipients", 0) + 1
            return await self._refuse(tx, "rcpt", r, address)
        except TempFailure as t:
            return t.reply()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        tx.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        envelope.tx = None
        return "250 2.0.0 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        tx: Transaction = envelope.tx
        # The listener counted bare CR, LF and NUL as the blocks arrived (its envelope is a
        # gateway.smtp.data.GatewayEnvelope, the only one this hook is called with).
        unclean: bool = envelope.unclean
        try:
            return await self._data(tx, _taken(envelope), unclean=unclean)
        except Refused as r:
            return await self._refuse(tx, "data", r)
        except TempFailure as t:
            log.warning(
                "message_deferred", queue_id=tx.queue_id, staff=tx.session.user, reply=t.reply()
            )
            return t.reply()

    async def _data(self, tx: Transaction, content: Content, *, unclean: bool) -> str:
        if unclean:
            # SMUG-1..11: bare CR or LF (or NUL) could end the message early at a later hop.
            raise Refused(
                550,
                "5.6.0",
                "Message contains bare CR, bare LF or NUL; lines must end with CRLF (RFC 5322 2.3)",
            )
        refused = tx.annotations.get("refused_recipients", 0)
        if refused:
            raise Refused(
                554,
                "5.7.1",
                f"{refused} recipient(s) were refused; nothing was "
                "sent to anyone. Remove them and send again",
            )
        try:
            fields = header_fields(content)
        except MalformedHeader as exc:
            raise Refused(554, "5.6.0", f"Message header is malformed: {exc}") from exc
        repeated = repeated_singletons(fields)
        if repeated:
            names = ", ".join(f"{name}:" for name in repeated)
            raise Refused(
                554,
                "5.6.0",
                f"Message has more than one {names} field; RFC 5322 3.6 allows one "
                "of each: remove the extra",
            )
        taken = [content]
        del content  # the original is the filters' to free
        # What leaves is held to the rule for what arrives (MIME-7): the pipeline checks
        # each filter's edit, and here what the headers' edit changed.
        content = await self.pipeline.on_data(tx, taken.pop())
        content = spliced("headers", tx, content, self._finish_headers(tx, content))
        if len(content) > self.settings.limits.max_message_size:
            raise Refused(552, "5.3.4", "Message too big after adding the required notice")
        held = bool(tx.annotations.get("hold"))
        message: Message = {
            "queue_id": tx.queue_id,
            "staff": tx.session.user,
            "peer": tx.session.peer,
            "mail_from": tx.mail_from,
            "rcpt_tos": tx.rcpt_tos,
            "content": content,
            "annotations": tx.annotations,
            "clean": True,  # checked just above (MIME-7)
        }
        try:
            # Committed together with other sessions' messages (group commit); 250 only
            # after the commit that covers this one.
            if held:
                accepted = await self.spool.store.run(lambda: self.holds.accept(**message))
                self.delivery.wake()  # the notice to its sender is queued with it
            else:
                accepted = await self.delivery.accept(message)
        except Exception as exc:
            log.exception("spool_write_failed", queue_id=tx.queue_id, error=type(exc).__name__)
            raise TempFailure("Queue write error; try again later") from exc
        log.info(
            "message_queued",
            queue_id=tx.queue_id,
            staff=tx.session.user,
            recipients=len(tx.rcpt_tos),
            size=len(content),
            sha256=accepted.sha256,
            held=held,
        )
        if held:
            hold = tx.annotations["hold"]
            why = "; ".join(str(r) for r in hold.get("reasons", []))
            hint = str(hold.get("hint") or "")
            return (
                f"250 2.0.0 Queued as {tx.queue_id}, held for approval ({why}): nothing is "
                "sent until a line manager approves it (you will get a notice)"
                + (f". Next time: {hint}" if hint else "")
            )
        return f"250 2.0.0 Queued as {tx.queue_id}"

    def _finish_headers(self, tx: Transaction, content: Content) -> Splices:
        cut = body_start(content)
        fields = header_fields(content)
        # Bcc: and Resent-Bcc: must not travel (RFC 5322 3.6.3, 3.6.6): their recipients are
        # in the envelope (HDR-3).
        # TLS-Required: No (RFC 8689 5) would ask later hops to relax TLS; we never do (TLS-7).
        fields = without(fields, "bcc", "resent-bcc", "tls-required")
        # RFC 5321 4.4; "ESMTPSA" = ESMTP with TLS and AUTH (RFC 3848).
        received = (
            f"Received: from {tx.session.helo} ([{tx.session.peer}])\r\n"
            f"\tby {self.settings.hostname} (c4f-gateway) with ESMTPSA id {tx.queue_id};\r\n"
            f"\t{email.utils.formatdate(time.time())}\r\n"
        ).encode("ascii")
        # The header section replaced in the message's own buffer: the body is not copied.
        return Splices.of([(0, cut, b"".join([received, *(f.raw for f in fields), CRLF]))])

    async def _refuse(self, tx: Transaction, phase: Phase, r: Refused, address: str = "") -> str:
        reply = r.reply()
        log.info(
            "refused",
            queue_id=tx.queue_id,
            staff=tx.session.user,
            phase=phase,
            client=tx.session.peer,
            reply=reply,
        )
        event = RefusedEvent(
            queue_id=tx.queue_id,
            at=time.time(),
            staff=tx.session.user,
            peer=tx.session.peer,
            phase=phase,
            mail_from=tx.mail_from,
            rcpt_tos=tuple(tx.rcpt_tos),
            address=address,
            reply=reply,
            reference=r.reference,
            annotations=dict(tx.annotations),
        )
        try:
            await self.spool.store.run(self._record_refusal, event)
        except Exception as exc:
            # The refusal stands either way; the missing record is an alert for the admin.
            log.error("register_refusal_failed", queue_id=tx.queue_id, error=type(exc).__name__)
        return reply

    def _record_refusal(self, event: RefusedEvent) -> None:
        with self.spool.store.transaction() as conn:
            self.spool.recorder.refused(conn, event)


def _taken(envelope: Any) -> Content:
    """The message, no longer held by the envelope: the filters edit it in place, or let
    it go once they have replaced it (a message can be 25 MB)."""
    content: Content = envelope.received
    envelope.received = None
    return content


def _session(server: Any, session: Any) -> Session:
    member = session.auth_data
    return Session(
        peer=getattr(server, "client_ip", "") or "",
        helo=session.host_name or "",
        user=getattr(member, "login", "") or "",
        tls=bool(getattr(server, "implicit_tls", False) or server._tls_protocol is not None),
    )
