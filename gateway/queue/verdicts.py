"""What an attempt's replies mean for each recipient, and what the attempt records.

Per pending recipient: 2xx delivered; 5xx bounced; 4xx (or no reply) deferred with
exponential backoff, or bounced with RFC 3463 5.4.7 once the message is older than
``max_queue_age`` (RFC 5321 4.5.4.1). Pure functions: :mod:`gateway.queue.delivery` writes
what they decide.
"""

from __future__ import annotations

from typing import Literal

from gateway.events import Outcome
from gateway.queue.dsn import permanent_status
from gateway.queue.spool import Spooled
from gateway.queue.transports import AttemptResult
from gateway.settings import Delivery

Status = Literal["delivered", "deferred", "bounced"]
Verdicts = dict[int, tuple[Status, str]]  # recipient index -> (status, deciding reply)


def judge(
    msg: Spooled, result: AttemptResult, now: float, max_queue_age: float
) -> tuple[Verdicts, dict[int, tuple[str, str]]]:
    """Per pending recipient: its status and the reply that decided it (the register's
    evidence); and, for those that failed for good, the DSN's (status, diagnostic)."""
    expired = now - msg.created >= max_queue_age
    verdicts: Verdicts = {}
    failed: dict[int, tuple[str, str]] = {}
    for i in msg.pending:
        code, text = result.replies.get(msg.rcpt_tos[i], (451, result.final_reply))
        reply = f"{code} {text}"
        if 200 <= code < 300:
            verdicts[i] = ("delivered", reply)
        elif code >= 500:
            verdicts[i] = ("bounced", reply)
            failed[i] = (permanent_status(reply), reply)
        elif expired:
            reply = f"gave up after {_duration(max_queue_age)}; last reply: {reply}"
            verdicts[i] = ("bounced", reply)
            failed[i] = ("5.4.7", reply)
        else:
            verdicts[i] = ("deferred", reply)
    return verdicts, failed


def outcomes(msg: Spooled, result: AttemptResult, now: float, verdicts: Verdicts) -> list[Outcome]:
    """The register's outcomes of this attempt: one per (status, reply), its recipients."""
    groups: dict[tuple[Status, str], list[int]] = {}
    for i, verdict in verdicts.items():
        groups.setdefault(verdict, []).append(i)
    return [
        Outcome(
            queue_id=msg.queue_id,
            at=now,
            attempt=msg.attempts + 1,
            status=status,
            recipients=tuple(msg.rcpt_tos[i] for i in idxs),
            reply=reply,
            evidence=result.evidence,
        )
        for (status, reply), idxs in groups.items()
    ]


def retry_at(msg: Spooled, now: float, verdicts: Verdicts, d: Delivery) -> float | None:
    """When a recipient deferred is tried again; None if none was."""
    if not any(status == "deferred" for status, _ in verdicts.values()):
        return None
    # Exponential backoff (exponent capped so the float cannot overflow).
    backoff: float = d.retry_initial * 2 ** min(msg.attempts, 32)
    return now + min(backoff, d.retry_max)


def with_status(verdicts: Verdicts, status: Status) -> list[int]:
    return [i for i, (s, _) in verdicts.items() if s == status]


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"
