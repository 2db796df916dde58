"""The exceptions that cross module boundaries, each carrying the SMTP reply it means."""

from __future__ import annotations


class Refused(Exception):
    """A policy decision: the message (or one recipient) is refused for good.

    ``code`` is the SMTP reply code (5xx), ``enhanced`` the RFC 3463 status code and
    ``text`` a reason the sender can act on. ``reference`` is a short code that also
    appears in the logs (and the disclosure register) so a refusal can be traced.
    """

    def __init__(self, code: int, enhanced: str, text: str, *, reference: str = "") -> None:
        super().__init__(text)
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.reference = reference

    def reply(self) -> str:
        ref = f" [ref {self.reference}]" if self.reference else ""
        return f"{self.code} {self.enhanced} {self.text}{ref}"


class TempFailure(Exception):
    """A fault we cannot judge right now: the client should try again later (4xx)."""

    def __init__(self, text: str, *, code: int = 451, enhanced: str = "4.3.0") -> None:
        super().__init__(text)
        self.code = code
        self.enhanced = enhanced
        self.text = text

    def reply(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


class ConfigError(Exception):
    """Bad configuration: start-up stops with ``file: key: reason``."""


class SpoolCorrupt(Exception):
    """A spooled message failed its integrity check (wrong key, truncated, altered)."""
