"""Console sign-in throttle across accounts (catalogue AUTH-6).

A successful sign-in clears only its own account's failures: one address that signs in to
an account of its own between guesses at others stays throttled (AUTH-1 limits, NIST SP
800-63B 5.2.2). Each sign-in uses a fresh browser, as the guesser would; Starlette's test
client always comes from the same address ("testclient").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.pki import TestCA
from support.web import ADMIN, MANAGER, PASSWORD, STAFF, Site, make_site, sign_in


@pytest.fixture
def site(tmp_path: Path, ca: TestCA) -> Site:
    return make_site(tmp_path / "gw", ca)


def _attempt(site: Site, login: str, password: str) -> int:
    with site.client() as browser:
        return sign_in(browser, login, password).status_code


def test_auth6_own_sign_in_does_not_reset_guessing_at_other_accounts(site: Site) -> None:
    limit = site.settings.auth.max_failures_per_client
    for n in range(limit - 1):
        assert _attempt(site, STAFF, f"guess-{n}") == 401
    assert _attempt(site, MANAGER, PASSWORD) == 303  # the guesser's own account
    assert _attempt(site, ADMIN, "one-more-guess") == 401
    assert _attempt(site, ADMIN, "and-another") == 429
    assert _attempt(site, ADMIN, PASSWORD) == 429
    site.clock.advance(site.settings.auth.lockout_seconds + 1)
    assert _attempt(site, ADMIN, PASSWORD) == 303


def test_auth6_sign_in_clears_its_own_accounts_typos(site: Site) -> None:
    limit = site.settings.auth.max_failures_per_client
    for n in range(limit - 1):
        assert _attempt(site, MANAGER, f"typo-{n}") == 401
    assert _attempt(site, MANAGER, PASSWORD) == 303
    # Those typos were the manager's own: the address may still make a full set of mistakes.
    for n in range(limit - 1):
        assert _attempt(site, ADMIN, f"typo-{n}") == 401
    assert _attempt(site, ADMIN, PASSWORD) == 303
