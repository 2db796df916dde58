"""One SMTP transaction on an open, verified connection: MAIL, RCPT per recipient, DATA.

The envelope goes out exactly as stored (never re-parsed), with the extensions the
message needs (SIZE, 8BITMIME, SMTPUTF8); the result is one reply per recipient.
"""

from __future__ import annotations

import re
from typing import cast

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings

from gateway.errors import TempFailure
from gateway.events import Evidence
from gateway.mail.content import Content
from gateway.mail.wire import has_bare_line_end_or_nul
from gateway.queue.transports import AttemptResult

# What may not appear in an address we put on a command line ourselves. Submission
# already refuses these (smtp_handler); checked again because a bounce or an admin tool
# could queue an address by another way.
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")


async def transaction(
    client: aiosmtplib.SMTP,
    mail_from: str,
    rcpt_tos: list[str],
    content: Content,
    evidence: Evidence,
    *,
    final_reply_timeout: float,
    clean: bool = False,
) -> AttemptResult:
    """MAIL, RCPT per recipient, DATA: one reply per recipient (RFC 5321 3.3).

    The envelope addresses go out exactly as stored, never re-parsed: what the policy
    compared is what the upstream gets (REL-3). aiosmtplib's ``sendmail`` would run them
    through ``email.utils.parseaddr``, which turns ``"a@x"<b@y>`` into ``b@y``.

    DATA waits ``final_reply_timeout`` for its replies (TLS-12): past it the attempt is
    deferred and the message may reach the recipient twice (the window DUR-8 describes).
    """
    if _UNSAFE_ADDRESS.search(mail_from):
        reason = "553 5.1.7 sender address cannot be sent safely"
        return AttemptResult({r: (553, reason[4:]) for r in rcpt_tos}, reason, evidence)
    options = []
    if client.supports_extension("size"):
        options.append(f"SIZE={len(content)}".encode())
    if not content.isascii() and client.supports_extension("8bitmime"):
        options.append(b"BODY=8BITMIME")  # RFC 6152
    if not all(a.isascii() for a in (mail_from, *rcpt_tos)):
        if not client.supports_extension("smtputf8"):
            reason = "553 5.6.7 upstream does not support SMTPUTF8 (RFC 6531 3.5)"
            return AttemptResult({r: (553, reason[4:]) for r in rcpt_tos}, reason, evidence)
        options.append(b"SMTPUTF8")
    reply = await client.execute_command(b"MAIL", b"FROM:" + _path(mail_from), *options)
    if reply.code != 250:
        text = f"{reply.code} {reply.message}"
        return AttemptResult({r: (reply.code, reply.message) for r in rcpt_tos}, text, evidence)
    replies: dict[str, tuple[int, str]] = {}
    accepted: list[str] = []
    for rcpt in rcpt_tos:
        if _UNSAFE_ADDRESS.search(rcpt):
            replies[rcpt] = (553, "5.1.3 address cannot be sent safely")
            continue
        reply = await client.execute_command(b"RCPT", b"TO:" + _path(rcpt))
        replies[rcpt] = (reply.code, reply.message)
        if 200 <= reply.code < 300:  # 250 or 251 (RFC 5321 4.2.2)
            accepted.append(rcpt)
    if not accepted:
        return AttemptResult(replies, "no recipient accepted", evidence)
    try:
        reply = await send_data(client, content, reply_timeout=final_reply_timeout, clean=clean)
    except aiosmtplib.SMTPDataError as exc:
        if 200 <= exc.code < 300:  # a 2xx where 354 belongs: the replies are out of step
            raise TempFailure(f"upstream answered DATA with {exc.code}", enhanced="4.5.0") from exc
        for rcpt in accepted:
            replies[rcpt] = (exc.code, exc.message)
        return AttemptResult(replies, f"{exc.code} {exc.message}", evidence)
    for rcpt in accepted:
        replies[rcpt] = (reply.code, reply.message)
    return AttemptResult(replies, f"{reply.code} {reply.message}", evidence)


# DATA up to this size goes out in one write with its final dot.
_ONE_WRITE = 64 * 1024


def _path(address: str) -> bytes:
    return b"<" + address.encode("utf-8") + b">"


async def send_data(
    client: aiosmtplib.SMTP, content: Content, *, reply_timeout: float, clean: bool = False
) -> aiosmtplib.SMTPResponse:
    """DATA, the content dot-stuffed (RFC 5321 4.5.2) and ended, and the final reply.

    What aiosmtplib's ``SMTP.data`` does, at C speed: it runs two regular expressions over
    the whole message and copies it three times on the event loop, most of the delivery
    of a large message. What we send has CRLF line ends already (submission refuses
    anything else, MIME-7 checks what the filters made), so one ``replace`` stuffs it;
    content that somehow is not clean still gets aiosmtplib's repair. ``clean``: the
    spool checked it when it accepted it, so it is not read again here (SMUG-12: what
    reached the spool by another path is checked there, and repaired here).
    Raises as ``SMTP.data`` does: SMTPDataError for a refusal, and after a lost connection
    or a timeout the client is closed (a connection that failed mid-message is not reused).
    """
    start = await client.execute_command(b"DATA", timeout=reply_timeout)
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    if not clean and has_bare_line_end_or_nul(content):
        content = normalize_message_line_endings(bytes(content))
    # A bytearray's replace copies even when nothing matches: not a 25 MB message for that.
    stuffed = content.replace(b"\r\n.", b"\r\n..") if b"\r\n." in content else content
    try:
        lead = b"." if stuffed.startswith(b".") else b""
        end = b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n"
        if len(stuffed) <= _ONE_WRITE:
            protocol.write(lead + stuffed + end)  # one TLS record, one send
        else:  # not copied again to save a write
            for piece in (lead, stuffed, end):
                if piece:
                    # Any bytes-like is written as it is (asyncio.WriteTransport.write).
                    protocol.write(cast(bytes, piece))
        # No await between the writes and this read: the reply cannot arrive unasked.
        reply = await protocol.read_response(timeout=reply_timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()
        raise
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    return reply
