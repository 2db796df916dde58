"""Requests for information received: a register entry of kind ``request``.

Policy, "Inter-agency working": "When C4F receives a request for information, the person
receiving the request must record details of the agency or person making it and the nature
of the information being requested." A request may come by phone, letter, email or in
person, so it is recorded on its own (``c4f-gateway register request add``, the console's
"Record a request" form), not only as a follow-up of a message. It is sealed like every
entry; nothing personal is in its plain columns. An outgoing message answers it with
``[request:N]`` in its subject (or ``X-Disclosure-Request: N``): the disclosure filter
refuses a number that is not a request (:func:`family_of`), and the register's records link
the answer and the request both ways (:func:`gateway.register.fold.build_records`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import structlog

from gateway.register.fields import FAMILY_REF, RegisterError

if TYPE_CHECKING:  # the formats import this module's words, never the ledger
    from gateway.register.ledger import Register

log = structlog.get_logger("gateway.register")

KIND = "request"
VIA = ("phone", "letter", "email", "in-person")
VIA_WORDS = {
    "phone": "by phone",
    "letter": "by letter",
    "email": "by email",
    "in-person": "in person",
}
MAX_TEXT = 1000
# The clause the full family report serves (quoted word for word from the policy).
CLAUSE = (
    'Policy, "Inter-agency working": "When C4F receives a request for information, the '
    "person receiving the request must record details of the agency or person making it and "
    'the nature of the information being requested."'
)


@dataclass(frozen=True)
class NewRequest:
    """A request as the person who took it gives it; :meth:`checked` says what is wrong."""

    requester: str  # the agency or person making it
    via: str  # phone, letter, email, in-person
    received: str  # YYYY-MM-DD
    nature: str  # the nature of the information requested
    by: str  # the staff member who took it
    family: str = ""
    contact_id: str = ""  # C-NNN when the requester is an approved contact
    organisation: str = ""  # that contact's organisation

    def checked(self, today: date) -> NewRequest:
        requester, nature = " ".join(self.requester.split()), " ".join(self.nature.split())
        if not requester:
            raise RegisterError("say who made the request: an agency or a person")
        if not nature:
            raise RegisterError("say what information was requested")
        for name, value in (("who made the request", requester), ("the nature", nature)):
            if len(value) > MAX_TEXT:
                raise RegisterError(f"{name}: longer than {MAX_TEXT} characters")
        if self.via not in VIA:
            raise RegisterError(f"how it arrived must be one of {', '.join(VIA)}, not {self.via!r}")
        try:
            received = date.fromisoformat(self.received)
        except ValueError:
            raise RegisterError(f"{self.received!r} is not a date (YYYY-MM-DD)") from None
        if received > today:
            raise RegisterError(f"the request cannot be received after today ({today})")
        if self.family and not FAMILY_REF.match(self.family):
            raise RegisterError(
                f"{self.family!r} is not a family reference (letters, digits, . _ / -)"
            )
        if not self.by.strip():
            raise RegisterError("say who took the request (a staff login)")
        return NewRequest(
            requester=requester,
            via=self.via,
            received=received.isoformat(),
            nature=nature,
            by=self.by.strip().lower(),
            family=self.family,
            contact_id=self.contact_id,
            organisation=self.organisation,
        )


def record(register: Register, request: NewRequest, today: date) -> int:
    """Append the request (checked first); returns its register number."""
    r = request.checked(today)
    personal = {
        "requester": r.requester,
        "contact_id": r.contact_id,
        "organisation": r.organisation,
        "via": r.via,
        "received": r.received,
        "nature": r.nature,
        "family": r.family,
        # Who took it: the staff member of the record (scope, lists) and who recorded it.
        "staff": r.by,
        "actor": r.by,
        "external": False,  # nothing left the centre
    }
    with register.store.transaction() as conn:
        seq = register.append(conn, kind=KIND, at=register.clock(), personal=personal)
    log.info("register_request_recorded", entry=seq, via=r.via)
    return seq


def family_of(register: Register, number: int) -> str:
    """The family reference of request ``number`` ('' when none), as last corrected, for
    a message that answers it; :class:`RegisterError` says why no message can (not a
    request, or purged). Reads that entry and its follow-ups only, once per message."""
    r = register.thread_record(number)
    if r is None or r.kind != KIND:
        raise RegisterError(
            f"Request {number} is not a request in the register: record the request first "
            "(c4f-gateway register request add, or Record a request in the console) "
            "or correct the number in [request:N]. Nothing was sent"
        )
    if r.purged:
        raise RegisterError(
            f"Request {number} was purged from the register: nothing can answer it now"
        )
    return r.family


def other_family(number: int) -> str:
    """Why a message naming ``[request:number]`` and another family is refused (the
    families are not repeated: the reply is logged)."""
    return (
        f"Request {number} was recorded for another family than [family:...] in the subject "
        "says: correct one of them, or leave [family:...] out to take the request's. "
        "Nothing was sent"
    )
