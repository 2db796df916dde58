"""What ``check-config`` says about the confidentiality policy ([policy]): WARNING lines.

Two things the policy asks that a config can drift from: "The policy will be reviewed and
if necessary updated annually" (``reviewed_on`` more than 12 months ago), and the notice
every email must carry, word for word ("Transmitting information"): the notice file the
disclaimer filter uses must say what the policy's text says.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gateway.errors import ConfigError
from gateway.mail.disclaimer_notice import DEFAULT_FILE, Notice
from gateway.settings import Settings
from gateway.settings.policy import NOTICE_INTRO, notice_in


def policy_warnings(settings: Settings, today: date) -> list[str]:
    """``FILE: KEY: REASON`` lines; ConfigError when the policy file cannot be read."""
    policy = settings.policy
    source = settings.source
    out: list[str] = []
    if policy.overdue(today):
        out.append(
            f"{source}: policy.reviewed_on: the policy (version {policy.version}) was last "
            f"reviewed on {policy.reviewed_on}, more than 12 months ago; the policy is "
            "reviewed annually: review it, then set reviewed_on (and version)"
        )
    try:
        text = policy.text()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    prescribed = notice_in(text)
    where = "policy.file" if policy.file else "the shipped policy"
    if prescribed is None:
        out.append(
            f"{source}: policy.file: no confidentiality notice found in {where} (the lines "
            f"after '{NOTICE_INTRO}'); the notice file cannot be compared with it"
        )
        return out
    given = settings.filter.get("disclaimer", {}).get("file")
    notice_file = DEFAULT_FILE
    if isinstance(given, str) and given:
        notice_file = Path(given) if Path(given).is_absolute() else settings.base_dir / given
    try:
        words = Notice.load(notice_file, "filter.disclaimer.file").words
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if words != prescribed:
        key = "filter.disclaimer.file" if given else "the shipped notice"
        out.append(
            f"{source}: {key}: the notice ({notice_file}) differs from the one in {where} "
            f"(version {policy.version}, 'Transmitting information'): "
            f"{_first_difference(words, prescribed)}"
        )
    return out


def _first_difference(given: str, prescribed: str) -> str:
    """Where the two wordings part, in a few words of each."""
    a, b = given.split(), prescribed.split()
    k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    mine = " ".join(a[k : k + 6]) or "(ends)"
    theirs = " ".join(b[k : k + 6]) or "(ends)"
    return f"from word {k + 1} the notice reads '{mine}', the policy '{theirs}'"
