"""The policy itself (issue 14): its text, version and annual review in the config.

"The policy will be reviewed and if necessary updated annually": ``check-config`` warns
(exit 0, a WARNING line) once ``[policy] reviewed_on`` is more than 12 months old, and when
the notice file the disclaimer filter uses says something other than the notice the
policy prescribes ("Transmitting information"). The real command runs on a real config.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from support.pki import TestCA
from support.subprocess_gateway import prepare, run_cli

from gateway.errors import ConfigError
from gateway.mail.disclaimer_notice import DEFAULT_FILE, Notice
from gateway.settings.policy import SHIPPED_FILE, PolicySettings, notice_in

SHARED_POLICY = Path(__file__).resolve().parents[2] / ".." / "shared" / "policy"
CLAUSE = "The policy will be reviewed and if necessary updated annually."


def _today() -> date:
    return datetime.now(UTC).date()


def _config(tmp_path: Path, ca: TestCA, policy: dict[str, str], **more: object) -> Path:
    filters = ["sender", "disclaimer"] if "filter" in more else ["sender"]
    return prepare(
        tmp_path / "gw",
        ca,
        config={"policy": policy, "pipeline": {"filters": filters}, **more},
    )


def _warnings(stderr: str) -> list[str]:
    """The WARNING lines but those of a test gateway's chain and password cost."""
    other = (": pipeline.filters: ", ": auth.password_hash_cost: ")
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("WARNING:") and not any(o in line for o in other)
    ]


def test_the_shipped_policy_is_the_centres_text_and_prescribes_the_shipped_notice() -> None:
    text = SHIPPED_FILE.read_text(encoding="utf-8")
    assert text.startswith("Confidentiality Policy\n") and text.endswith(CLAUSE)
    original = SHARED_POLICY / "confidentiality-policy.txt"
    if original.exists():  # the centre's copy, next to the checkout
        assert text.encode() == original.read_bytes()
    prescribed = notice_in(text)
    assert prescribed is not None and prescribed.startswith("This document is strictly")
    assert prescribed.endswith("permanently delete what you have received.")
    assert Notice.load(DEFAULT_FILE).words == prescribed


def test_review_is_due_twelve_months_on() -> None:
    p = PolicySettings(reviewed_on="2025-03-01")
    assert p.review_due() == date(2026, 3, 1)
    assert not p.overdue(date(2026, 3, 1)) and p.overdue(date(2026, 3, 2))
    leap = PolicySettings(reviewed_on="2024-02-29")
    assert leap.review_due() == date(2025, 2, 28) and leap.overdue(date(2025, 3, 1))


@pytest.mark.parametrize("bad", ["2025-13-01", "1 March 2025", "20250301", ""])
def test_a_reviewed_on_that_is_no_date_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^policy\.reviewed_on: "):
        PolicySettings(reviewed_on=bad)


def test_check_config_warns_when_the_review_is_more_than_12_months_old(
    tmp_path: Path, ca: TestCA
) -> None:
    old = (_today() - timedelta(days=400)).isoformat()
    config = _config(tmp_path, ca, {"version": "2024-1", "reviewed_on": old})
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{config}: ok"
    assert _warnings(checked.stderr) == [
        f"WARNING: {config}: policy.reviewed_on: the policy (version 2024-1) was last "
        f"reviewed on {old}, more than 12 months ago; the policy is reviewed annually: "
        "review it, then set reviewed_on (and version)"
    ]

    recent = (_today() - timedelta(days=300)).isoformat()
    config = _config(tmp_path, ca, {"version": "2025-1", "reviewed_on": recent})
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    assert _warnings(checked.stderr) == []


def test_check_config_warns_when_the_notice_file_differs_from_the_policys_notice(
    tmp_path: Path, ca: TestCA
) -> None:
    today = _today().isoformat()
    notice = tmp_path / "notice.txt"
    # The policy's words, wrapped differently: the same notice.
    notice.write_text(Notice.load(DEFAULT_FILE).plain("\n"), encoding="utf-8")
    config = _config(
        tmp_path, ca, {"reviewed_on": today}, filter={"disclaimer": {"file": str(notice)}}
    )
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    assert _warnings(checked.stderr) == []

    changed = DEFAULT_FILE.read_text(encoding="utf-8").replace("strictly prohibited", "not allowed")
    notice.write_text(changed, encoding="utf-8")
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    assert _warnings(checked.stderr) == [
        f"WARNING: {config}: filter.disclaimer.file: the notice ({notice}) differs from the "
        "one in the shipped policy (version 1, 'Transmitting information'): from word 41 "
        "the notice reads 'not allowed. If you receive this', the policy "
        "'strictly prohibited. If you receive this'"
    ]


def test_a_policy_file_of_the_centres_own_is_read_and_compared(tmp_path: Path, ca: TestCA) -> None:
    policy = tmp_path / "policy.txt"
    policy.write_text(
        "Transmitting information:\nthe email should include the following information:\n"
        "Private and confidential.\nStorage of information;\n",
        encoding="utf-8",
    )
    config = _config(
        tmp_path, ca, {"reviewed_on": _today().isoformat(), "file": str(policy), "version": "7"}
    )
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    [warning] = _warnings(checked.stderr)
    assert warning.startswith(
        f"WARNING: {config}: the shipped notice: the notice ({DEFAULT_FILE}) differs from "
        "the one in policy.file (version 7, 'Transmitting information'): from word 1 "
        "the notice reads 'This document is strictly confidential and', the policy "
        "'Private and confidential.'"
    ), warning

    policy.unlink()
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 1 and f"{config}: ok" not in checked.stdout
    assert checked.stderr.splitlines()[-1] == (
        f"c4f-gateway check-config: config error: {config}: policy.file: cannot read "
        f"{policy}: No such file or directory"
    )


def test_check_config_names_a_bad_review_date(tmp_path: Path, ca: TestCA) -> None:
    config = _config(tmp_path, ca, {"reviewed_on": "2025-12-31"})
    # prepare() loads the config itself: the bad date goes in afterwards.
    config.write_text(config.read_text().replace('"2025-12-31"', '"31/12/2025"'))
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 1
    assert checked.stderr.strip() == (
        f"c4f-gateway check-config: config error: {config}: policy.reviewed_on: "
        "'31/12/2025' is not a date (YYYY-MM-DD)"
    )
