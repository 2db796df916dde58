"""REL-5 in the directory: the mailbox a sub-address reaches, and what resembles it."""

from __future__ import annotations

import pytest

from gateway.directory.addresses import normalise
from gateway.directory.lookalike import Candidate, LookalikeIndex

INDEX = LookalikeIndex(
    [Candidate(1, "j.whitaker@cafcass.gov.uk", "j.whitaker", "cafcass.gov.uk", "Jane Whitaker")]
)


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("person+x@agency.example", "person@agency.example"),
        ("PERSON+Y@Agency.Example", "person@agency.example"),
        ("person+a+b@agency.example", "person@agency.example"),
        ("person@agency.example", "person@agency.example"),
        # A leading "+" is a phone number, not an empty mailbox name.
        ("+442079460000@corp.example", "+442079460000@corp.example"),
    ],
)
def test_rel5_mailbox_key_drops_the_tag_and_the_case(address: str, mailbox: str) -> None:
    assert normalise(address).mailbox_key == mailbox


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("j.whitacker+court@cafcass.gov.uk", "local-typo"),
        ("J.Whitacker+Court@cafcass.gov.uk", "local-typo"),
        ("whitaker.j+court@cafcass.gov.uk", "reordered"),
        ("j.whitaker+court@cafcass.gov.uk", "plus-tag"),
    ],
)
def test_rel5_lookalike_judges_the_mailbox_under_a_tag(address: str, reason: str) -> None:
    local, _, domain = address.rpartition("@")
    found = INDEX.find(local, domain)
    assert found is not None
    assert (found.contact_id, found.reason) == (1, reason)
