"""Retention holds: why a record is kept beyond the three-year retention period.

Policy, "Storage of information": information about families is disposed of after three
years "unless a safeguarding or child protection issue has arisen or anybody has been
injured whilst using the centre". A hold therefore says which of these it is (or a legal
hold, or another reason), why, who set it and when it is to be reviewed (by default a
year after it was set). A hold is set on one record (a subject tag at send time,
``register annotate N --retention-hold``) or on a whole family (``register hold-family``,
an entry of kind ``family-hold`` that covers every record with that family reference,
including ones recorded or linked later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

CATEGORIES = ("safeguarding", "child-protection", "injury", "legal", "other")
# The subject tags that set a hold when the message is sent, most specific first.
TAGGED = (
    ("child_protection", "child-protection"),
    ("injury", "injury"),
    ("safeguarding", "safeguarding"),
)
FAMILY_HOLD = "family-hold"  # the entry kind of a family-level hold and its release


@dataclass(frozen=True)
class RetentionHold:
    category: str
    reason: str
    by: str
    set_at: float
    review_on: str  # YYYY-MM-DD: when a manager looks at it again
    family_hold: int = 0  # the family-hold entry this comes from (0: not a family hold)
    via: int = 0  # the record of the same family whose own hold keeps this one

    @property
    def source(self) -> str:
        """Why this record is kept, in words: its own hold or its family's."""
        if self.family_hold:
            return f"family hold (entry {self.family_hold})"
        if self.via:
            return f"its family's record {self.via}"
        return "own hold"

    def review_due(self, today: str) -> bool:
        return bool(self.review_on) and self.review_on <= today


def default_review_on(set_at: float) -> str:
    """The same day a year after the hold was set (local date; 29 February: the 28th)."""
    day = local_day(set_at)
    try:
        return day.replace(year=day.year + 1).isoformat()
    except ValueError:
        return day.replace(year=day.year + 1, day=28).isoformat()


def local_day(ts: float) -> date:
    return datetime.fromtimestamp(ts).astimezone().date()
