"""[notices] from: the address the gateway's own mail comes from (issue 12).

Microsoft 365 relays only a From: (and MAIL FROM) the gateway's login may send as, so the
held notice and the DSN must carry the configured address. A notice has a real
reverse-path (RFC 5321 4.5.5); a DSN's stays null (RFC 3464 2).
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from conftest import StartGateway
from support.delivery import until
from support.harness import message, write_config
from support.held import arrived_for, send_held
from support.subprocess_gateway import run_cli
from support.upstream import Upstream

from gateway.settings import Settings, load

STAFF = "alice@c4f.example"
MANAGER = "mona@c4f.example"
CONTACT = "j.smith@partner.test"
GONE = "nobody@partner.test"
RELAY = "relay-account@c4f.example"
CHAIN = {"pipeline": {"filters": ["sender", "disclosure", "approval"]}}


def _from(content: bytes) -> str:
    parsed = message_from_bytes(content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return str(parsed["From"].addresses[0].addr_spec)


async def _notice_and_dsn(
    start_gateway: StartGateway, upstream: Upstream, config: dict[str, object]
) -> tuple[tuple[str, str], tuple[str, str]]:
    """(MAIL FROM, From:) of a held notice and of a DSN, as the upstream got them."""
    gw = await start_gateway(upstream=upstream, config={**CHAIN, **config})
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    await send_held(gw, STAFF, [CONTACT], "[consent:refused] [reason:Risk of harm] Report")
    await until(lambda: arrived_for(upstream.arrived, STAFF))
    [notice] = arrived_for(upstream.arrived, STAFF)

    upstream.behaviour.rcpt_replies[GONE] = "550 5.1.1 no such user"
    subject = "[consent:obtained] Visit notes"
    errors, _ = await gw.send(STAFF, [GONE], message(STAFF, [GONE], subject=subject))
    assert errors == {}
    await until(lambda: len(arrived_for(upstream.arrived, STAFF)) == 2)
    dsn = arrived_for(upstream.arrived, STAFF)[1]
    assert b"multipart/report" in dsn.content and b"Final-Recipient: rfc822; " + GONE.encode() in (
        dsn.content
    )
    return (notice.mail_from, _from(notice.content)), (dsn.mail_from, _from(dsn.content))


async def test_notices_and_dsns_come_from_the_configured_address(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    notice, dsn = await _notice_and_dsn(start_gateway, upstream, {"notices": {"from": RELAY}})
    assert notice == (RELAY, RELAY)
    assert dsn == ("<>", RELAY)  # RFC 3464: a DSN's reverse-path stays null


async def test_by_default_they_come_from_postmaster_at_the_first_domain(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    config = {"organisation": {"domains": ["centre.example", "c4f.example"]}}
    notice, dsn = await _notice_and_dsn(start_gateway, upstream, config)
    assert notice == ("postmaster@centre.example", "postmaster@centre.example")
    assert dsn == ("<>", "postmaster@centre.example")


def test_a_bad_address_stops_check_config_with_the_key_named(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        {"delivery": {"transport": "maildir"}, "notices": {"from": "Relay <a@b.example>"}},
    )
    result = run_cli("check-config", "--config", config)
    assert result.returncode == 1  # check-config: 1 is "this config is not valid"
    assert f"{config}: notices.from: must be a plain address (name@domain), ASCII only" in (
        result.stderr
    )


def test_the_default_follows_the_first_organisation_domain(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        {"organisation": {"domains": ["x.example"]}, "delivery": {"transport": "maildir"}},
    )
    assert load(config).notices_from == "postmaster@x.example"
    assert Settings().notices_from == "postmaster@c4f.example"
