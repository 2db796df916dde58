"""``c4f-gateway health``: one line per check, exit 0 only when every check passed.

Run against a real gateway (its listeners on the ports it bound), a real TLS upstream
from the test CA, and the gateway's own SQLite file. A check that cannot tell is a
failed check: monitoring must never read a fault as health.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from conftest import StartGateway
from support.harness import RunningGateway, message
from support.pki import TestCA
from support.upstream import Upstream

from gateway.cli import main

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"


def bound_config(gw: RunningGateway) -> Path:
    """The gateway's config with the ports it actually bound (the tests listen on 0)."""
    text = gw.config_path.read_text(encoding="utf-8")
    for b in gw.gateway.bound:
        text = text.replace(f'{b.kind} = ["127.0.0.1:0"]', f'{b.kind} = ["127.0.0.1:{b.port}"]', 1)
    path = gw.config_path.with_name("bound.toml")
    path.write_text(text, encoding="utf-8")
    return path


async def health(
    config: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, str]]:
    code = await asyncio.to_thread(main, ["health", "--config", str(config), *extra])
    lines = capsys.readouterr().out.splitlines()
    found = [re.match(r"(ok  |FAIL)  (.+?): (.*)", line) for line in lines]
    assert all(found), lines
    return code, {m.group(2): f"{m.group(1).strip()} {m.group(3)}" for m in found if m}


async def test_health_of_a_running_gateway_passes_every_check(
    start_gateway: StartGateway,
    upstream: Upstream,
    ca: TestCA,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ninety_days = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)
    cert = ca.issue("gateway.test", sans=["localhost"], not_after=ninety_days)
    tls = {"cert_file": str(cert.cert), "key_file": str(cert.key)}
    gw = await start_gateway(upstream=upstream, config={"tls": tls})
    gw.add_staff(ALICE)
    _errors, _reply = await gw.send(ALICE, [BOB], message(ALICE, [BOB]))
    await upstream.wait_for(1)
    config = bound_config(gw)
    code, checks = await health(config, capsys)
    assert code == 0, checks
    assert len(gw.gateway.bound) == 2  # one STARTTLS, one implicit TLS
    for port in (b.port for b in gw.gateway.bound):
        assert re.fullmatch(r"ok answered '220 .*'", checks[f"listener 127.0.0.1:{port}"])
    assert checks["database"].startswith("ok writable, commit took ")
    assert checks["queue"].startswith("ok 0 waiting")
    assert re.match(r"ok \d+ entries, chain intact", checks["register"])
    assert re.fullmatch(r"ok valid until \d{4}-\d\d-\d\d", checks["certificate"])
    assert re.fullmatch(
        r"ok verified TLS \(TLSv1\.[23]\), no login configured",
        checks[f"upstream localhost:{upstream.port}"],
    )
    # Nothing was sent upstream by the probe: no second message, no MAIL command.
    assert len(upstream.arrived) == 1


async def test_health_fails_on_what_stops_mail_and_says_which(
    start_gateway: StartGateway, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await start_gateway(upstream=upstream, deliver=False)
    gw.add_staff(ALICE)
    await gw.send(ALICE, [BOB], message(ALICE, [BOB]))
    config = bound_config(gw)
    code, checks = await health(config, capsys, "--max-queue-age", "0")
    assert code == 1
    assert re.fullmatch(r"FAIL 1 waiting, oldest \d+ s", checks["queue"])
    assert checks["database"].startswith("ok ")
    # The test CA's certificates last 10 days: due for renewal.
    assert re.fullmatch(r"FAIL valid until .*: renew it \(\d days left\)", checks["certificate"])

    await upstream.stop()  # the smarthost goes away
    await gw.gateway.stop()  # and so does the gateway
    code, checks = await health(config, capsys)
    assert code == 1
    for b in gw.gateway.bound:
        assert checks[f"listener 127.0.0.1:{b.port}"].startswith("FAIL no connection")
    assert checks[f"upstream localhost:{upstream.port}"].startswith("FAIL ")

    # --no-upstream leaves the upstream out; the failures above remain.
    code, checks = await health(config, capsys, "--no-upstream")
    assert code == 1 and not [k for k in checks if k.startswith("upstream")]
