"""Which messages wait for a line manager before they leave (policy, "Disclosing information").

Staff must "make their line manager aware of, discuss and record any concerns relating to
the disclosure of information". This filter decides which messages are held; holding,
approving, refusing and expiring them is :mod:`gateway.holds.service`. By default a message is
held when:

- it goes outside the centre and its consent status is refused, not sought or not
  recorded (``hold_consent``);
- it is flagged ``[safeguarding]`` (``hold_safeguarding``), wherever it goes;
- any recipient is a contact marked "requires approval"
  (``hold_contacts_requiring_approval``);
- the ``media`` filter found a photograph or video (``[filter.media] action = "hold"``).

Runs after ``disclosure``, ``contacts`` and ``media`` (it reads what they found) and fails
closed: without the disclosure filter every external message counts as "consent not
recorded".
The decision is left in ``tx.annotations["hold"]``; the message is then still answered 250
(it is safely spooled), with a reply that says it is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.directory import addresses
from gateway.envelope import Transaction
from gateway.errors import ConfigError
from gateway.pipeline import Content, FilterContext, checked_options
from gateway.register.record import CONSENT_VALUES, CONSENT_WORDS

DEFAULT_HOLD_CONSENT = ("refused", "not-sought", "not-recorded")
DEFAULT_EXPIRE_DAYS = 7.0
DEFAULT_ESCALATE_HOURS = 24.0
DEFAULT_ESCALATE_SAFEGUARDING_HOURS = 2.0
# Approving a message sent without consent needs the manager's reason for sharing anyway.
NOTE_REQUIRED_FOR = ("refused", "not-sought", "not-recorded")
_AFTER = ("disclosure", "contacts", "media")


@dataclass(frozen=True)
class ApprovalPolicy:
    hold_consent: tuple[str, ...] = DEFAULT_HOLD_CONSENT
    hold_safeguarding: bool = True
    hold_contacts_requiring_approval: bool = True
    expire_after_days: float = DEFAULT_EXPIRE_DAYS
    # Undecided this long after it was held: the admins are told (once).
    escalate_after_hours: float = DEFAULT_ESCALATE_HOURS
    escalate_safeguarding_after_hours: float = DEFAULT_ESCALATE_SAFEGUARDING_HOURS
    # Told at once of every [safeguarding] hold, with its approvers (); (): every admin.
    safeguarding_leads: tuple[str, ...] = ()


OPTIONS = (
    "hold_consent",
    "hold_safeguarding",
    "hold_contacts_requiring_approval",
    "expire_after_days",
    "escalate_after_hours",
    "escalate_safeguarding_after_hours",
    "safeguarding_leads",
)


def create(options: dict[str, Any], context: FilterContext) -> ApprovalFilter:
    chain = list(context.settings.pipeline.filters)
    for name in _AFTER:
        if name in chain and chain.index(name) > chain.index("approval"):
            raise ConfigError(f"pipeline.filters: approval must come after {name}")
    checked_options(context, "approval", options, OPTIONS)
    return ApprovalFilter(policy_from(options), context.settings.organisation.domains)


def policy_from(options: dict[str, Any]) -> ApprovalPolicy:
    where = "filter.approval"
    consent = options.get("hold_consent", list(DEFAULT_HOLD_CONSENT))
    if not isinstance(consent, list) or not all(isinstance(c, str) for c in consent):
        raise ConfigError(f"{where}: hold_consent: expected a list of consent statuses")
    unknown = sorted(set(consent) - set(CONSENT_VALUES))
    if unknown:
        raise ConfigError(
            f"{where}: hold_consent: unknown status {', '.join(unknown)} "
            f"(known: {', '.join(CONSENT_VALUES)})"
        )
    flags = {}
    for name in ("hold_safeguarding", "hold_contacts_requiring_approval"):
        value = options.get(name, True)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name}: expected true or false")
        flags[name] = value
    days = options.get("expire_after_days", DEFAULT_EXPIRE_DAYS)
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 365:
        raise ConfigError(f"{where}: expire_after_days: expected a number of days, 0 to 365")
    hours = {}
    for name, default in (
        ("escalate_after_hours", DEFAULT_ESCALATE_HOURS),
        ("escalate_safeguarding_after_hours", DEFAULT_ESCALATE_SAFEGUARDING_HOURS),
    ):
        value = options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: {name}: expected a number of hours above 0")
        hours[name] = float(value)
    leads = options.get("safeguarding_leads", [])
    if not isinstance(leads, list) or not all(isinstance(x, str) and "@" in x for x in leads):
        raise ConfigError(f"{where}: safeguarding_leads: expected a list of staff logins")
    return ApprovalPolicy(
        hold_consent=tuple(consent),
        hold_safeguarding=flags["hold_safeguarding"],
        hold_contacts_requiring_approval=flags["hold_contacts_requiring_approval"],
        expire_after_days=float(days),
        escalate_after_hours=hours["escalate_after_hours"],
        escalate_safeguarding_after_hours=hours["escalate_safeguarding_after_hours"],
        safeguarding_leads=tuple(x.lower() for x in leads),
    )


class ApprovalFilter:
    name = "approval"

    def __init__(self, policy: ApprovalPolicy, own_domains: tuple[str, ...] | list[str]) -> None:
        self.policy = policy
        self.own_domains = addresses.own_domains(own_domains)

    async def on_data(self, tx: Transaction, content: Content) -> Content:
        reasons = self.reasons(tx)
        if reasons:
            consent = self._consent(tx)
            p = self.policy
            urgent = bool((tx.annotations.get("disclosure") or {}).get("safeguarding"))
            hours = p.escalate_safeguarding_after_hours if urgent else p.escalate_after_hours
            tx.annotations["hold"] = {
                "reasons": reasons,
                "needs_note": self._external(tx) and consent in NOTE_REQUIRED_FOR,
                "expires_after": p.expire_after_days * 86400.0,
                "urgent": urgent,
                "escalate_after": hours * 3600.0,
                "leads": list(p.safeguarding_leads),
                "hint": self.hint(tx),
            }
        return content

    def reasons(self, tx: Transaction) -> list[str]:
        """Why ``tx`` must wait for a line manager ([] when it may leave at once)."""
        p = self.policy
        disclosure = tx.annotations.get("disclosure") or {}
        out = []
        consent = self._consent(tx)
        if self._external(tx) and consent in p.hold_consent:
            out.append(f"consent {CONSENT_WORDS.get(consent, consent)}")
        if p.hold_safeguarding and disclosure.get("safeguarding"):
            out.append("flagged safeguarding")
        if p.hold_contacts_requiring_approval:
            recipients = tx.annotations.get("recipients") or {}
            envelope = {a.lower() for a in tx.rcpt_tos}
            for address, info in recipients.items():
                if (
                    isinstance(info, dict)
                    and info.get("requires_approval")
                    and address.lower() in envelope
                ):
                    out.append(f"contact {info.get('contact_id') or address} requires approval")
        media = tx.annotations.get("media") or {}
        if media.get("found"):
            out.append(str(media.get("reason") or "photo or video attached"))
        return out

    def hint(self, tx: Transaction) -> str:
        """What the sender can do next time, in the words of the subject tags."""
        consent = self._consent(tx)
        disclosure = tx.annotations.get("disclosure") or {}
        if disclosure.get("safeguarding"):
            return "safeguarding messages always wait for a line manager"
        if self._external(tx) and consent == "not-recorded":
            return (
                "add [consent:obtained] to the subject when consent was obtained "
                "(or [consent:refused] / [consent:not-sought] with [reason:why])"
            )
        if self._external(tx) and consent in self.policy.hold_consent:
            return "sharing without consent always waits for a line manager"
        if (tx.annotations.get("media") or {}).get("found") and not self.reasons(tx)[:-1]:
            return "photographs and video always wait for a line manager (policy)"
        return "messages to this contact always wait for a line manager"

    def _consent(self, tx: Transaction) -> str:
        disclosure = tx.annotations.get("disclosure") or {}
        return str(disclosure.get("consent") or "not-recorded")

    def _external(self, tx: Transaction) -> bool:
        return addresses.goes_outside(tx.rcpt_tos, self.own_domains)
