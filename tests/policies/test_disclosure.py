"""The disclosure filter: subject tags and X-Disclosure-* headers read, then removed."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from support.contacts import settings_for

from filters.disclosure import HOW_TO_TAG, DisclosureFilter, create
from gateway.envelope import Session, Transaction
from gateway.errors import ConfigError, Refused
from gateway.pipeline import FilterContext, Pipeline, load_filters
from gateway.store import Store

BODY = b"Hello,\r\n\r\n[consent:obtained] in the body is text, not a tag.\r\n"


def _tx(*rcpts: str) -> Transaction:
    return Transaction(
        session=Session(peer="192.0.2.1", user="alice@c4f.example", tls=True),
        queue_id="Q1",
        mail_from="alice@c4f.example",
        rcpt_tos=list(rcpts or ("j.smith@cafcass.example",)),
    )


def _msg(*headers: bytes) -> bytes:
    return (
        b"From: alice@c4f.example\r\nTo: j.smith@cafcass.example\r\n"
        + b"".join(headers)
        + b"Message-ID: <m1@c4f.example>\r\n\r\n"
        + BODY
    )


def _filter(missing: str = "accept-incomplete") -> DisclosureFilter:
    return DisclosureFilter(own_domains=("c4f.example",), missing_consent=missing)  # type: ignore[arg-type]


async def _run(
    content: bytes, tx: Transaction | None = None, missing: str = "accept-incomplete"
) -> tuple[bytes, dict[str, object]]:
    tx = tx or _tx()
    out = await Pipeline([_filter(missing)]).on_data(tx, content)
    return bytes(out), tx.annotations["disclosure"]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (b"Subject: [consent:obtained] Contact report\r\n", b"Subject: Contact report\r\n"),
        (b"Subject: Contact report [consent:obtained]\r\n", b"Subject: Contact report\r\n"),
        (b"Subject: Re: [consent:obtained] [family:F-1042] Report\r\n", b"Subject: Re: Report\r\n"),
        (b"Subject: [CONSENT: Obtained][family:F-1042]Report\r\n", b"Subject: Report\r\n"),
        (b"Subject: Contact report\r\n [consent:obtained]\r\n", b"Subject: Contact report\r\n"),
        (b"Subject: [consent:obtained]\r\n Contact   report\r\n", b"Subject: Contact   report\r\n"),
        (b"Subject: [consent:obtained]\r\n", b"Subject:\r\n"),
        # Two tags ending the subject leave no blank behind them.
        (b"Subject: Visit notes [consent:obtained] [family:F-1]\r\n", b"Subject: Visit notes\r\n"),
        (b"Subject: Notes [consent:obtained]\t[injury] \r\n", b"Subject: Notes\r\n"),
    ],
)
async def test_subject_tags_are_removed_byte_exactly(subject: bytes, expected: bytes) -> None:
    out, details = await _run(_msg(subject))
    assert out == _msg(expected)
    assert details["consent"] == "obtained"


_NOT_GIVEN = {"reason": "", "family": "", "nature": "", "safeguarding": False, "informed": ""}


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (
            b"Subject: [consent:not-sought] [reason:Court order 2023/114] [family:F-1042]"
            b" [nature:Contact session report] [safeguarding] Report\r\n",
            {
                "consent": "not-sought",
                "reason": "Court order 2023/114",
                "family": "F-1042",
                "nature": "Contact session report",
                "safeguarding": True,
            },
        ),
        (
            b"Subject: Report [consent:obtained] [request:12] [informed:yes] [child-protection]"
            b" [injury] [third-party]\r\n",
            {
                "consent": "obtained",
                "informed": "yes",
                "request": 12,
                "child_protection": True,
                "injury": True,
                "third_party": True,
            },
        ),
    ],
)
async def test_every_tag_is_read(subject: bytes, expected: dict[str, object]) -> None:
    out, details = await _run(_msg(subject))
    assert out == _msg(b"Subject: Report\r\n")
    assert details == {
        **_NOT_GIVEN,
        "external": True,
        "complete": True,
        "missing": [],
        **expected,
    }


async def test_request_and_flags_by_header() -> None:
    content = _msg(
        b"Subject: Report [consent:obtained]\r\n",
        b"X-Disclosure-Request: 7\r\n",
        b"X-Disclosure-Third-Party: yes\r\n",
        b"X-Disclosure-Child-Protection: no\r\n",
    )
    out, details = await _run(content)
    assert out == _msg(b"Subject: Report\r\n")
    assert details["request"] == 7
    assert details["third_party"] is True
    assert "child_protection" not in details  # "no" leaves the entry as before


async def test_flags_absent_leave_the_details_as_before() -> None:
    _, details = await _run(_msg(b"Subject: Report [consent:obtained]\r\n"))
    assert not {"request", "child_protection", "injury", "third_party"} & set(details)


@pytest.mark.parametrize("tag", [b"[request:abc]", b"[request:0]", b"[request]", b"[injury:maybe]"])
async def test_unclear_request_or_flag_is_refused(tag: bytes) -> None:
    with pytest.raises(Refused) as caught:
        await _run(_msg(b"Subject: Report [consent:obtained] " + tag + b"\r\n"))
    assert caught.value.code == 550
    assert caught.value.reference == "DISC-TAG"


async def test_headers_are_read_and_removed() -> None:
    content = _msg(
        b"Subject: Contact report\r\n",
        b"X-Disclosure-Consent: refused\r\n",
        b"X-Disclosure-Reason: Risk of harm to\r\n the child\r\n",
        b"x-disclosure-family: F-7\r\n",
        b"X-Disclosure-Safeguarding: yes\r\n",
        b"X-Disclosure-Informed: no\r\n",
        b"X-Disclosure-Colour: blue\r\n",  # unknown: still never relayed
    )
    out, details = await _run(content)
    assert out == _msg(b"Subject: Contact report\r\n")
    assert (details["consent"], details["reason"], details["family"]) == (
        "refused",
        "Risk of harm to the child",
        "F-7",
    )
    assert (details["safeguarding"], details["informed"], details["complete"]) == (True, "no", True)


async def test_outlook_thread_topic_loses_its_tags_too() -> None:
    content = _msg(
        b"Subject: [consent:obtained] Report\r\n", b"Thread-Topic: [consent:obtained] Report\r\n"
    )
    out, _ = await _run(content)
    assert out == _msg(b"Subject: Report\r\n", b"Thread-Topic: Report\r\n")


async def test_tags_inside_encoded_words_are_removed() -> None:
    content = _msg(b"Subject: =?UTF-8?Q?[consent:obtained]_Report_for_Zo=C3=AB?=\r\n")
    out, details = await _run(content)
    assert details["consent"] == "obtained"
    parsed = message_from_bytes(out, policy=policy.default)
    assert str(parsed["subject"]) == "Report for Zoë"
    assert b"consent" not in out.split(b"\r\n\r\n")[0]
    assert out.endswith(b"\r\n\r\n" + BODY)


async def test_a_message_without_tags_is_relayed_as_the_same_bytes() -> None:
    content = _msg(b"Subject: Contact report\r\n")
    out, details = await _run(content, _tx("bob@c4f.example"))
    assert out is content
    assert (details["external"], details["complete"], details["consent"]) == (
        False,
        True,
        "not-recorded",
    )


async def test_missing_consent_on_external_mail_is_marked_incomplete_by_default() -> None:
    _, details = await _run(
        _msg(b"Subject: Contact report\r\n"), _tx("bob@c4f.example", "j.smith@cafcass.example")
    )
    assert (details["external"], details["complete"], details["missing"]) == (
        True,
        False,
        ["consent"],
    )


async def test_missing_consent_is_refused_with_instructions_when_configured() -> None:
    with pytest.raises(Refused) as info:
        await _run(_msg(b"Subject: Contact report\r\n"), missing="refuse")
    assert (info.value.code, info.value.enhanced, info.value.reference) == (
        550,
        "5.7.1",
        "DISC-CONSENT",
    )
    assert info.value.reply() == (
        f"550 5.7.1 Consent status missing; {HOW_TO_TAG}. Nothing was sent [ref DISC-CONSENT]"
    )


async def test_missing_reason_when_consent_was_not_sought() -> None:
    subject = b"Subject: [consent:not-sought] Report\r\n"
    _, details = await _run(_msg(subject))
    assert details["missing"] == ["reason"]
    with pytest.raises(Refused, match="Consent not sought: the reason for sharing is missing"):
        await _run(_msg(subject), missing="refuse")


async def test_internal_mail_needs_no_consent_even_under_refuse() -> None:
    _, details = await _run(_msg(b"Subject: Rota\r\n"), _tx("bob@c4f.example"), missing="refuse")
    assert details["complete"] is True


@pytest.mark.parametrize(
    ("header", "message_"),
    [
        (b"Subject: [consent:yes] Report\r\n", "Disclosure detail consent not understood"),
        (b"Subject: [family:F 1;x] Report\r\n", "Family reference must be"),
        (
            b"Subject: [safeguarding:maybe] Report\r\n",
            r"^\[safeguarding\] in the subject takes no value: write \[safeguarding\] alone",
        ),
        (
            b"Subject: [consent:refused] [reason:x] [informed:maybe] Report\r\n",
            r"^\[informed:\.\.\.\] in the subject must be \[informed:yes\] \(the person was told",
        ),
        (
            b"Subject: [reason:] Report\r\n",
            r"^\[reason:\.\.\.\] in the subject must have 1 to 1000 characters after the colon",
        ),
        (
            b"Subject: [consent:obtained] Report\r\nX-Disclosure-Consent: refused\r\n",
            "two different consent values",
        ),
    ],
)
async def test_unclear_details_are_refused_rather_than_guessed(
    header: bytes, message_: str
) -> None:
    with pytest.raises(Refused, match=message_) as info:
        await _run(_msg(header))
    assert info.value.code == 550


def test_create_takes_its_options_and_uses_the_settings(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.db")
    context = FilterContext(settings=settings_for(store), store=store)  # with register keys
    built = create({}, context)
    assert (built.own_domains, built.missing_consent) == ({"c4f.example"}, "accept-incomplete")
    assert built.register is not None and built.inherit_for == 90 * 86400.0
    assert create({"inherit_from_thread": False}, context).register is None
    assert create({"inherit_for_days": 30}, context).inherit_for == 30 * 86400.0
    with pytest.raises(ConfigError, match=r"filter\.disclosure\.missing_consent: unknown option"):
        create({"missing_consent": "refuse"}, context)
    with pytest.raises(ConfigError, match=r"inherit_for_days: expected a whole number > 0"):
        create({"inherit_for_days": 0}, context)
    with pytest.raises(ConfigError, match=r"inherit_from_thread: expected true or false"):
        create({"inherit_from_thread": "yes"}, context)


async def test_runs_in_the_pipeline_by_name(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.db")
    context = FilterContext(settings=settings_for(store), store=store)
    pipeline = Pipeline(load_filters(["disclosure"], {}, context))
    tx = _tx()
    out = await pipeline.on_data(tx, _msg(b"Subject: [consent:obtained] Report\r\n"))
    assert out == _msg(b"Subject: Report\r\n")
    assert tx.annotations["disclosure"]["consent"] == "obtained"
