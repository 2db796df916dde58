"""The one-page staff guide (docs/staff-guide.md) tells staff every reason the gateway holds
their message for a line manager, including a photo or video (filters.media): a staff
member who meets a hold they were never told of cannot avoid the next one."""

from __future__ import annotations

import re
from pathlib import Path

from filters import media

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "staff-guide.md"


def _section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found is not None, title
    return " ".join(found.group(1).split())


def test_the_guide_names_every_reason_a_message_is_held() -> None:
    held = re.search(r"\*\*Held for your line manager\*\*: (.*?)\. ", _section("What happens next"))
    assert held is not None
    reasons = held.group(1)
    for words in ("no consent tag", "refused or not sought", "[safeguarding]", "requires approval"):
        assert words in reasons, words
    assert media.REASON.replace(" attached", "") in reasons  # "photo or video"


def test_replies_are_explained_with_what_happens_not_with_requests() -> None:
    assert "**Replies**" in _section("What happens next")
    assert "**Replies**" not in _section("When someone asks for information")
