"""TLS-12: how long we wait for the upstream's reply to the final dot.

RFC 5321 4.5.3.2.6 asks a client to wait at least 10 minutes for it: the server may be
scanning or storing the message, and a client that gives up earlier may well have handed
it over already, so the retry is a second copy (RFC 1047). That wait is its own setting,
``upstream.final_reply_timeout`` (600 s); ``upstream.timeout`` (60 s) still bounds the
connection and every other reply, so a dead smarthost is noticed quickly. Past the final
reply timeout the message is deferred and sent again: the at-least-once window that
``config/gateway.example.toml`` documents (the other side is DUR-8 in test_delivery.py).
"""

from __future__ import annotations

from pathlib import Path

from conftest import StartGateway
from support.delivery import BOB, EventLog, relay_gateway, smarthost, smarthost_ca, submit, until
from support.fakesmtp import Script
from support.harness import write_config

from gateway.settings import Upstream, load


def test_tls12_final_reply_timeout_defaults_to_rfc5321_ten_minutes(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        {
            "organisation": {"domains": ["c4f.example"]},
            "upstream": {"host": "smtp.example.org"},
        },
    )
    upstream = load(config).upstream
    assert upstream.final_reply_timeout == 600.0  # RFC 5321 4.5.3.2.6
    assert upstream.timeout == 60.0  # connect, greeting and the other replies
    assert Upstream().final_reply_timeout == 600.0


async def test_tls12_final_reply_slower_than_the_command_timeout_is_delivered_once(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The reply to the dot takes longer than ``upstream.timeout``: we keep waiting for it
    (the final reply timeout), so one DATA, one copy, delivered at the first attempt."""
    ca = smarthost_ca(tmp_path)
    log = EventLog()
    async with await smarthost(ca, Script(final_delays=[1.0])) as fake:
        gw = await relay_gateway(start_gateway, fake, ca, log, upstream={"timeout": 0.4})
        qid = await submit(gw, [BOB])
        await fake.wait_for(1)
        await until(lambda: log.of(qid))
        assert log.statuses(qid) == [(1, "delivered")]
        assert fake.verbs().count("DATA") == 1
        assert len(fake.delivered()) == 1
        assert gw.gateway.spool.rows() == []
