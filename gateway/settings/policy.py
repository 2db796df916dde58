"""The ``[policy]`` settings section: which confidentiality policy the gateway serves.

The policy says "The policy will be reviewed and if necessary updated annually" and that
referrers and users "have access to it upon request": the gateway knows its text (``file``;
by default the copy shipped as ``gateway/shipped/confidentiality-policy.txt``, word for
word), its ``version`` and the date of its last review (``reviewed_on``). ``check-config``
and the console warn once that review is more than 12 months old.

The shipped text states neither a version nor a date, so the defaults are version "1" and
the date that copy was taken into the gateway (:data:`SHIPPED_ON`): set both to the
centre's own when the policy is reviewed.

Hooked into :class:`gateway.settings.Settings` as ``policy: PolicySettings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from gateway.errors import ConfigError

# The policy as the centre wrote it; [policy] file replaces it.
SHIPPED_FILE: Traversable = files("gateway") / "shipped" / "confidentiality-policy.txt"
# When the shipped copy was taken from the centre's policy (it carries no date of its own).
SHIPPED_ON = "2026-12-06"
# "Transmitting information": the line that introduces the notice every email must carry.
NOTICE_INTRO = "the email should include the following information:"


@dataclass(frozen=True)
class PolicySettings:
    # The centre's name for this edition of the policy, shown with its text ("1", "2026-v2").
    version: str = "1"
    # YYYY-MM-DD: the last annual review. More than 12 months ago: a warning in check-config
    # and a banner for managers and admins in the console.
    reviewed_on: str = SHIPPED_ON
    # The policy's text (UTF-8); None: the copy shipped with the gateway.
    file: Path | None = None

    def __post_init__(self) -> None:
        if not self.version.strip() or not self.version.isprintable():
            raise ConfigError("policy.version: must be a short printable name, such as '1'")
        try:
            date.fromisoformat(self.reviewed_on)
        except ValueError:
            raise ConfigError(
                f"policy.reviewed_on: {self.reviewed_on!r} is not a date (YYYY-MM-DD)"
            ) from None
        if len(self.reviewed_on) != 10:
            raise ConfigError(f"policy.reviewed_on: {self.reviewed_on!r} is not YYYY-MM-DD")

    @property
    def reviewed(self) -> date:
        return date.fromisoformat(self.reviewed_on)

    def review_due(self) -> date:
        """Twelve months after the last review (28 February after a 29 February)."""
        r = self.reviewed
        try:
            return r.replace(year=r.year + 1)
        except ValueError:
            return r.replace(year=r.year + 1, day=28)

    def overdue(self, today: date) -> bool:
        """Whether the last review is more than 12 months before ``today``."""
        return today > self.review_due()

    def text(self) -> str:
        """The policy's text; ConfigError ``policy.file: REASON`` when it cannot be read."""
        source: Path | Traversable = self.file or SHIPPED_FILE
        try:
            text = source.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"policy.file: cannot read {source}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"policy.file: {source} is not UTF-8 text") from None
        if not text.strip():
            raise ConfigError(f"policy.file: {source} is empty")
        return text


def notice_in(policy_text: str) -> str | None:
    """The confidentiality notice the policy prescribes: the lines after "the email should
    include the following information:" up to the next heading (a line ending in ``:`` or
    ``;``), words joined by single spaces; None when the text has no such passage."""
    lines = policy_text.replace("\r\n", "\n").split("\n")
    for k, line in enumerate(lines):
        if line.strip().endswith(NOTICE_INTRO):
            notice: list[str] = []
            for following in lines[k + 1 :]:
                if following.strip().endswith((":", ";")):
                    break
                notice.append(following)
            words = " ".join(" ".join(notice).split())
            return words or None
    return None
