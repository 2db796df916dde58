"""gateway.directory.lookalike: which approved contact a refused address was probably meant
to be."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.directory.lookalike import (
    Candidate,
    LookalikeIndex,
    distance,
    mask,
    registrable,
    skeleton,
)

INDEX = LookalikeIndex(
    [
        Candidate(1, "j.whitaker@cafcass.gov.uk", "j.whitaker", "cafcass.gov.uk", "Jane Whitaker"),
        Candidate(2, "s.patel@camden.gov.uk", "s.patel", "camden.gov.uk", "Sanjay Patel"),
        Candidate(3, "family-court.org.uk", None, "family-court.org.uk", ""),
        Candidate(4, "m.jones@nhs.net", "m.jones", "nhs.net", "Mary Jones"),
        Candidate(
            5, "a.long@northamptonshire.gov.uk", "a.long", "northamptonshire.gov.uk", "Alex Long"
        ),
        Candidate(6, "team@contact.example", "team", "contact.example", ""),
    ]
)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("cafcass.gov.uk", ("cafcass", "gov.uk")),
        ("mail.cafcass.gov.uk", ("cafcass", "gov.uk")),
        ("nhs.net", ("nhs", "net")),
        ("a.b.example.com", ("example", "com")),
        ("police.uk", ("police", "uk")),
        ("localhost", ("localhost", "")),
    ],
)
def test_registrable(domain: str, expected: tuple[str, str]) -> None:
    assert registrable(domain) == expected


def test_distance_counts_swaps_as_one_and_stops_at_the_limit() -> None:
    assert distance("cafcass", "cafcass", 1) == 0
    assert distance("cafcass", "cafcas", 1) == 1
    assert distance("cafcass", "cafcsas", 1) == 1  # transposition
    assert distance("cafcass", "kafkas", 1) == 2  # limit + 1
    assert distance("short", "a-much-longer-name", 2) == 3


def test_skeleton_folds_confusables() -> None:
    assert skeleton("cаfcass") == skeleton("cafcass")  # Cyrillic a
    assert skeleton("ｃａｆｃａｓｓ") == skeleton("cafcass")  # full width
    assert skeleton("cafcäss") == skeleton("cafcass")
    assert skeleton("carnden") == skeleton("camden")  # rn reads as m
    assert skeleton("paypa1") == skeleton("paypal")
    assert skeleton("cafcass") != skeleton("camden")


def test_mask_keeps_the_shape_and_hides_the_rest() -> None:
    assert mask("j.whitaker@cafcass.gov.uk") == "j.wh******@caf****.gov.uk"
    assert mask("m.jones@nhs.net") == "m.j****@nh*.net"
    assert mask("family-court.org.uk") == "fami***************"
    assert "whitaker" not in mask("j.whitaker@cafcass.gov.uk")
    assert "cafcass" not in mask("j.whitaker@mail.cafcass.gov.uk")


@pytest.mark.parametrize(
    ("address", "contact", "reason"),
    [
        ("j.whitacker@cafcass.gov.uk", 1, "local-typo"),
        ("j.whtiaker@cafcass.gov.uk", 1, "local-typo"),
        ("whitaker.j@cafcass.gov.uk", 1, "reordered"),
        ("j.whitaker+court@cafcass.gov.uk", 1, "plus-tag"),
        ("j.whitaker@cafcas.gov.uk", 1, "domain-typo"),
        ("j.whitaker@cafcass.org.uk", 1, "other-suffix"),
        ("j.whitaker@cafcass.com", 1, "other-suffix"),
        ("j.whitaker@mail.cafcass.gov.uk", 1, "subdomain"),
        ("j.whitaker@cafcass.gov.uk.secure-mail.example", 1, "embedded"),
        ("j.whitaker@securecafcass.example", 1, "embedded"),
        ("j.whitaker@camden-council.example", 2, "embedded"),
        ("jane.whitaker@gmail.com", 1, "webmail-name"),
        ("whitaker.jane+court@hotmail.co.uk", 1, "webmail-name"),
        ("jwhitaker@outlook.com", 1, "webmail-name"),
        ("s.patel@camdem.gov.uk", 2, "domain-typo"),
        ("s.patel@carnden.gov.uk", 2, "confusable"),
        ("anyone@family-courts.org.uk", 3, "domain-typo"),
        ("anyone@family-court.gov.uk", 3, "other-suffix"),
        ("m.jomes@nhs.net", 4, "local-typo"),
        ("a.long@northamtonshlre.gov.uk", 5, "domain-typo"),  # 2 edits: a long name
        ("team@contact.exampel", 6, "other-suffix"),
    ],
)
def test_resemblance(address: str, contact: int, reason: str) -> None:
    local, _, domain = address.rpartition("@")
    found = INDEX.find(local, domain)
    assert found is not None
    assert (found.contact_id, found.reason) == (contact, reason)


def test_confusable_unicode_domain() -> None:
    found = INDEX.find("j.whitaker", "xn--cfcass-3nf.gov.uk", "cаfcass.gov.uk")
    assert found is not None and (found.contact_id, found.reason) == (1, "confusable")
    assert found.masked == "j.wh******@caf****.gov.uk"


@pytest.mark.parametrize(
    "address",
    [
        "other.person@cafcass.gov.uk",  # same organisation, another person: say nothing
        "stranger@unrelated.example",
        "someone@gmail.com",
        "x@nhsmail.example",  # a short name (nhs) is never looked for inside others
    ],
)
def test_no_resemblance(address: str) -> None:
    local, _, domain = address.rpartition("@")
    assert INDEX.find(local, domain) is None


def test_short_domain_typos_need_a_close_match() -> None:
    # northamptonshire (16 letters) allows 2 edits; nhs (3 letters) allows only 1.
    assert INDEX.find("m.jones", "nzz.net") is None
    found = INDEX.find("m.jones", "nhx.net")
    assert found is not None and found.reason == "domain-typo"


def _full_osa(a: str, b: str) -> int:
    """Reference: the whole optimal-string-alignment table, no band, no early exit."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


@settings(max_examples=400, deadline=None)
@given(st.text("abcd.-", max_size=9), st.text("abcd.-", max_size=9), st.integers(0, 3))
def test_banded_distance_matches_the_full_table(a: str, b: str, limit: int) -> None:
    assert distance(a, b, limit) == min(_full_osa(a, b), limit + 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text("abcde", min_size=1, max_size=12), min_size=1, max_size=8),
    st.text("abcde", min_size=1, max_size=12),
)
def test_typo_index_finds_what_a_full_scan_finds(names: list[str], query: str) -> None:
    index = LookalikeIndex(
        Candidate(i, f"x@{n}.example", "x", f"{n}.example") for i, n in enumerate(names)
    )
    limit = {n: 2 if len(n) >= 10 else 1 for n in names}
    expected = sorted(
        (_full_osa(query, n), n) for n in set(names) if _full_osa(query, n) <= limit[n]
    )
    found = index._name_typo(query)
    assert found == (expected[0][1] if expected else None)
