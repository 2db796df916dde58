"""Disclosure details from any mail client: subject tags and ``X-Disclosure-*`` headers.

Policy, "Inter-agency working": for every transfer the centre records whether consent
was obtained, refused or not sought, the reason when it was not obtained, and whether
the person was informed. Staff give these with the message itself:

- subject tags: ``[consent:obtained]``, ``[consent:refused]``, ``[consent:not-sought]``,
  ``[reason:TEXT]``, ``[family:REF]``, ``[nature:TEXT]``, ``[safeguarding]``,
  ``[informed:yes]``/``[informed:no]``, ``[request:N]`` (this message answers request N of
  the register; a number that is not a request there is refused), and the flags
  ``[child-protection]``, ``[injury]`` (kept beyond three years, with that category) and
  ``[third-party]`` (about another person: withheld from a client copy);
- headers, for clients that can set them: ``X-Disclosure-Consent``, ``-Reason``,
  ``-Family``, ``-Nature``, ``-Request`` (a number), and the yes/no ones ``-Safeguarding``,
  ``-Informed``, ``-Child-Protection``, ``-Injury``, ``-Third-Party``.

Tags and headers are removed before relaying (they are for the register, not the
recipient), byte-exactly: nothing else in the message changes. Outlook copies the
subject into ``Thread-Topic``, so tags are removed there too. The result is left in
``tx.annotations["disclosure"]`` for the register. An external message without a
consent status is accepted and marked incomplete, or refused with a reply that says
how to tag it (``[register] missing_consent``).

A reply keeps its conversation's status: a message whose ``In-Reply-To`` or
``References`` names a message the centre relayed in the last ``inherit_for_days`` days,
to outside recipients all at organisations that message went to, takes on its consent
status and reason, family and nature where it gives none of its own, and stays flagged
``[safeguarding]`` or ``[third-party]`` if the thread was (:mod:`gateway.register.threads`;
the register entry says "inherited from entry N"). A reply to another organisation
inherits nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from email.header import Header, decode_header, make_header
from typing import Any

import structlog

from gateway.directory import addresses
from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.mail.headers import CRLF, HeaderField, body_start, header_fields
from gateway.pipeline import Content, FilterContext, Splices, checked_options
from gateway.register import requests, threads
from gateway.register.fields import FAMILY_REF
from gateway.register.ledger import Register, RegisterError
from gateway.settings.register import MissingConsent, register_settings

log = structlog.get_logger("gateway.filters.disclosure")

_WS = rb"(?:[ \t]|\r\n[ \t])*"  # blanks, including folding (RFC 5322 2.2.3)
_KEYS = (
    "consent|reason|family|nature|safeguarding|informed|request|child-protection|injury|third-party"
)
_TAG = re.compile(
    rb"\[" + _WS + rb"(" + _KEYS.encode() + rb")" + _WS + rb"(?::((?:[^\]\r\n]|\r\n[ \t])*))?\]",
    re.IGNORECASE,
)
_TRAILING = re.compile(_WS)
_TAG_TEXT = re.compile(r"\[\s*(" + _KEYS + r")\s*(?::([^\]]*))?\]", re.IGNORECASE)
_HEADER_PREFIX = "x-disclosure-"
_HEADER_KEYS = (
    "consent",
    "reason",
    "family",
    "nature",
    "safeguarding",
    "informed",
    "request",
    "child-protection",
    "injury",
    "third-party",
)
# Flags: a bare tag means yes; the header says yes or no. Stored as child_protection etc.
_FLAGS = ("safeguarding", "child-protection", "injury", "third-party")
_CONSENT = {
    "obtained": "obtained",
    "refused": "refused",
    "not-sought": "not-sought",
    "not sought": "not-sought",
    "not_sought": "not-sought",
    "notsought": "not-sought",
}
_YES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
_MAX_TEXT = 1000
HOW_TO_TAG = (
    "add [consent:obtained], [consent:refused] or [consent:not-sought] to the subject, "
    "with [reason:why] when consent was refused or not sought"
)


def create(options: dict[str, Any], context: FilterContext) -> DisclosureFilter:
    checked_options(context, "disclosure", options, ("inherit_from_thread", "inherit_for_days"))
    inherit = options.get("inherit_from_thread", True)
    days = options.get("inherit_for_days", 90)
    if not isinstance(inherit, bool):
        raise ConfigError("filter.disclosure: inherit_from_thread: expected true or false")
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise ConfigError("filter.disclosure: inherit_for_days: expected a whole number > 0")
    settings = register_settings(context.settings)
    register = Register.from_settings(context.store, settings)
    return DisclosureFilter(
        own_domains=context.settings.organisation.domains,
        missing_consent=settings.missing_consent,
        register=register if inherit else None,
        requests=register,
        inherit_for_days=days,
    )


class DisclosureFilter:
    name = "disclosure"

    def __init__(
        self,
        own_domains: Sequence[str],
        missing_consent: MissingConsent,
        *,
        register: Register | None = None,
        requests: Register | None = None,
        inherit_for_days: int = 90,
    ) -> None:
        self.own_domains = addresses.own_domains(own_domains)
        self.missing_consent = missing_consent
        self.register = register  # None: replies inherit nothing
        # Where [request:N] is looked up (``create`` always gives it; None: not checked).
        self.requests = requests
        self.inherit_for = inherit_for_days * 86400.0

    async def on_data(self, tx: Transaction, content: Content) -> Content | Splices:
        fields = header_fields(content)
        found: list[tuple[str, str]] = []
        kept: list[HeaderField] = []
        answers: list[str] = []
        for f in fields:
            if f.key in ("in-reply-to", "references"):
                answers += threads.message_ids(_decoded(f.value))
            if f.key.startswith(_HEADER_PREFIX):
                key = f.key[len(_HEADER_PREFIX) :]
                if key in _HEADER_KEYS:
                    found.append((key, _decoded(f.value)))
                else:
                    log.info("disclosure_unknown_header", queue_id=tx.queue_id, field=f.key)
                continue  # every X-Disclosure-* field is for us, never for the recipient
            if f.key in ("subject", "thread-topic"):
                f, tags = _strip_tags(f)
                if f.key == "subject":
                    found += tags
            kept.append(f)
        thread = await self._thread(tx, answers) if answers else None
        details = self._details(tx, found, thread)
        if details.get("request") and self.requests is not None:
            await self._request_family(details, self.requests)
        tx.annotations["disclosure"] = details
        log.info(
            "disclosure_details",
            queue_id=tx.queue_id,
            given=sorted({k for k, _ in found}),
            inherited_from=details.get("inherited_from", 0),
            complete=details["complete"],
        )
        if len(kept) == len(fields) and all(a is b for a, b in zip(kept, fields, strict=True)):
            return content  # nothing to remove: relay the very same bytes
        # The header section replaced in the message's own buffer: the body is not copied.
        return Splices.of([(0, body_start(content), b"".join(f.raw for f in kept) + CRLF)])

    async def _request_family(self, details: dict[str, Any], register: Register) -> None:
        """An answer is about the family its request is about: without [family:...] it
        takes the request's; with another one it is refused. Refused here, at DATA, as is
        a number that is not a request, so the sender reads why and can correct it."""
        number = details["request"]
        try:
            asked = await register.store.run(requests.family_of, register, number)
        except RegisterError as exc:
            raise Refused(550, "5.7.1", str(exc), reference="DISC-REQUEST") from None
        if not asked:
            return
        if not details["family"]:
            details["family"] = asked
        elif details["family"].lower() != asked.lower():
            raise Refused(550, "5.7.1", requests.other_family(number), reference="DISC-REQUEST")

    async def _thread(self, tx: Transaction, answers: list[str]) -> threads.Inherited | None:
        """The relayed message this one answers, if the reply stays with its organisations."""
        reg = self.register
        if reg is None:
            return None
        known = tx.annotations.get("recipients") or {}
        info = {str(k).lower(): v for k, v in known.items()} if isinstance(known, dict) else {}

        def outside(address: str) -> bool:
            return addresses.goes_outside([address], self.own_domains)

        organisations = {
            threads.organisation_key(a, str((info.get(a.lower()) or {}).get("organisation") or ""))
            for a in tx.rcpt_tos
            if outside(a)
        }
        since = time.time() - self.inherit_for
        return await reg.store.run(
            threads.inherit,
            reg.store,
            reg.keyring,
            reg.thread_record,
            answers,
            organisations,
            outside,
            since,
        )

    def _details(
        self, tx: Transaction, found: list[tuple[str, str]], thread: threads.Inherited | None
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, raw in found:
            value = _normalise(key, raw)
            if key in values and values[key] != value:
                raise Refused(
                    550,
                    "5.7.1",
                    f"The message gives two different {key} values; "
                    "give each disclosure detail once",
                    reference="DISC-CONFLICT",
                )
            values[key] = value
        inherited_from = _inherit(values, thread) if thread is not None else 0
        external = addresses.goes_outside(tx.rcpt_tos, self.own_domains)
        consent = values.get("consent", "not-recorded")
        missing = []
        if external and consent == "not-recorded":
            missing.append("consent")
        if external and consent in ("refused", "not-sought") and not values.get("reason"):
            missing.append("reason")
        if missing and self.missing_consent == "refuse":
            what = (
                "Consent status missing"
                if "consent" in missing
                else (f"Consent {consent.replace('-', ' ')}: the reason for sharing is missing")
            )
            raise Refused(
                550, "5.7.1", f"{what}; {HOW_TO_TAG}. Nothing was sent", reference="DISC-CONSENT"
            )
        return {
            "consent": consent,
            "reason": values.get("reason", ""),
            "family": values.get("family", ""),
            "nature": values.get("nature", ""),
            "safeguarding": values.get("safeguarding", False),
            "informed": values.get("informed", ""),
            "external": external,
            "complete": not missing,
            "missing": missing,
            **({"inherited_from": inherited_from} if inherited_from else {}),
            # Set only when given, so entries without them read as before.
            **{
                k.replace("-", "_"): True
                for k in ("child-protection", "injury", "third-party")
                if values.get(k)
            },
            **({"request": values["request"]} if values.get("request") else {}),
        }


def _inherit(values: dict[str, Any], thread: threads.Inherited) -> int:
    """Fill what the reply does not say from its thread; returns the thread's entry if
    anything was taken. The consent status and its reason go together; a thread flagged
    safeguarding stays flagged, and so does a third-party one unless the reply says
    ``[third-party:no]``."""
    taken = False
    if "consent" not in values and thread.consent != "not-recorded":
        values["consent"] = thread.consent
        if thread.reason and "reason" not in values:
            values["reason"] = thread.reason
        taken = True
    for key in ("family", "nature"):
        if key not in values and getattr(thread, key):
            values[key] = getattr(thread, key)
            taken = True
    if thread.safeguarding and values.get("safeguarding") is not True:
        values["safeguarding"] = True
        taken = True
    if thread.third_party and "third-party" not in values:
        values["third-party"] = True  # it quotes the third party's information
        taken = True
    return thread.seq if taken else 0


def _normalise(key: str, raw: str) -> Any:
    text = " ".join(raw.split())
    bad = Refused(
        550, "5.7.1", f"Disclosure detail {key} not understood: {HOW_TO_TAG}", reference="DISC-TAG"
    )
    if key == "consent":
        if text.lower() not in _CONSENT:
            raise bad
        return _CONSENT[text.lower()]
    if key == "request":
        if not text.isdigit() or not 0 < int(text) < 2**63:
            raise Refused(
                550,
                "5.7.1",
                "Request must be the register number of the request (for example [request:12])",
                reference="DISC-TAG",
            )
        return int(text)
    if key in _FLAGS or key == "informed":
        if key in _FLAGS and not text:
            return True  # a bare flag tag such as [safeguarding]
        if text.lower() not in _YES:
            raise Refused(550, "5.7.1", _yes_or_no(key), reference="DISC-TAG")
        flag = _YES[text.lower()]
        return flag if key in _FLAGS else ("yes" if flag else "no")
    if key == "family":
        if not FAMILY_REF.match(text):
            raise Refused(
                550,
                "5.7.1",
                "Family reference must be letters, digits and . _ / - "
                "(for example [family:F-1042])",
                reference="DISC-TAG",
            )
        return text
    if not text or len(text) > _MAX_TEXT:
        raise Refused(
            550,
            "5.7.1",
            f"[{key}:...] in the subject must have 1 to {_MAX_TEXT} characters after the colon",
            reference="DISC-TAG",
        )
    return text


def _yes_or_no(key: str) -> str:
    """What to write instead of a yes/no tag the gateway cannot read (never its value)."""
    if key == "informed":
        return (
            "[informed:...] in the subject must be [informed:yes] (the person was told about "
            "this transfer) or [informed:no] (not told yet)"
        )
    return f"[{key}] in the subject takes no value: write [{key}] alone, or leave it out"


def _decoded(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError):
        return text


def _strip_tags(f: HeaderField) -> tuple[HeaderField, list[tuple[str, str]]]:
    """The field without its tags (byte-exact elsewhere), and the tags it carried."""
    head, colon, rest = f.raw.partition(b":")
    value = rest[: -len(CRLF)] if rest.endswith(CRLF) else rest
    if b"=?" in value:
        return _strip_encoded(f, value)
    matches = list(_TAG.finditer(value))
    if not matches:
        return f, []
    spans: list[list[int]] = []
    for m in matches:
        start, end = m.span()
        after = _TRAILING.match(value, end)
        end = after.end() if after else end
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    if spans[-1][1] == len(value):  # tags at the end take the blanks before them instead
        start = spans[-1][0]
        while start > 0 and value[start - 1 : start] in (b" ", b"\t"):
            start -= 1
            if value[start - 2 : start] == CRLF:
                start -= 2
        spans[-1][0] = start
    out, pos = bytearray(), 0
    for start, end in spans:
        out += value[pos:start]
        pos = end
    out += value[pos:]
    tags = [(m.group(1).decode().lower(), _decoded(m.group(2) or b"")) for m in matches]
    return HeaderField(f.name, head + colon + bytes(out) + CRLF), tags


def _strip_encoded(f: HeaderField, value: bytes) -> tuple[HeaderField, list[tuple[str, str]]]:
    # RFC 2047 encoded words (a subject with non-ASCII text): the tags may sit inside
    # them, so this one field is decoded, cleaned and encoded again.
    text = _decoded(value.replace(CRLF, b""))
    matches = list(_TAG_TEXT.finditer(text))
    if not matches:
        return f, []
    cleaned = " ".join(_TAG_TEXT.sub(" ", text).split())
    name = f.name.decode("ascii").strip()
    encoded = Header(cleaned, charset="utf-8", header_name=name).encode(linesep="\r\n")
    raw = f.name + b": " + encoded.encode("ascii") + CRLF
    return HeaderField(f.name, raw), [(m.group(1).lower(), m.group(2) or "") for m in matches]
