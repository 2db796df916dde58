"""The Prometheus endpoint ([metrics] listen): scraped over HTTP after a small load through a
real gateway and a real TLS upstream, its counters are held against the register's entries
and the queue table, and nothing personal may appear anywhere in what it serves."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosmtplib
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.delivery import until
from support.harness import RunningGateway, message
from support.held import queue_id
from support.pki import TestCA
from support.subprocess_gateway import GatewayProcess, connect, prepare, run_cli
from support.upstream import Upstream

from gateway.errors import ConfigError
from gateway.metrics.scrape import refusal_labels
from gateway.register.ledger import Register
from gateway.settings import Settings, load

StartGateway = Callable[..., Awaitable[RunningGateway]]
STAFF = "alice@c4f.example"
BOB = "bob@c4f.example"
CAROL = "carol@c4f.example"
CONTACT = "j.smith@partner.test"  # outside the centre, no consent recorded: held
INTRUDER = "mallory@c4f.example"  # a login that does not exist
MANAGER = "mona@c4f.example"  # Alice's line manager
SUBJECT = "Visit notes for the Hargreaves family"
CONFIG = {
    "pipeline": {"filters": ["sender", "approval", "disclaimer"]},
    "filter": {"disclaimer": {"signed": "refuse"}},
    "metrics": {"listen": "127.0.0.1:0"},
}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        return str(r.read().decode("utf-8"))


async def scrape(port: int) -> str:
    """GET /metrics as Prometheus would (in a thread: the gateway runs in this loop)."""
    return await asyncio.to_thread(_get, port)


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def signed_message() -> bytes:
    return (
        f"From: {STAFF}\r\nTo: {BOB}\r\nSubject: {SUBJECT}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/signed; protocol="application/pgp-signature"; '
        'micalg=pgp-sha256; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nSigned text.\r\n"
        "--b1\r\nContent-Type: application/pgp-signature\r\n\r\n"
        "-----BEGIN PGP SIGNATURE-----\r\nAAAA\r\n-----END PGP SIGNATURE-----\r\n"
        "--b1--\r\n"
    ).encode()


async def failed_login(gw: RunningGateway, login: str) -> None:
    client = await gw.client()
    try:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await client.ehlo()
            await client.auth_plain(login, "not-the-password")  # exactly one attempt
    finally:
        client.close()


async def test_counters_match_the_register_and_the_queue_and_name_nobody(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await start_gateway(upstream=upstream, config=CONFIG)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    for login in (BOB, CAROL):
        gw.add_staff(login)
    port = gw.gateway.port("metrics")
    before = samples(await scrape(port))
    assert value(before, "c4f_gateway_messages_accepted_total", origin="staff") == 0
    assert value(before, "c4f_gateway_recipient_outcomes_total", status="delivered") == 0

    await failed_login(gw, STAFF)
    await failed_login(gw, INTRUDER)
    # Delivered: two messages, three recipients.
    for rcpts in ([BOB, CAROL], [BOB]):
        errors, _ = await gw.send(STAFF, rcpts, message(STAFF, rcpts, subject=SUBJECT))
        assert errors == {}
    await until(lambda: len(upstream.arrived) == 2)
    # Deferred once by the upstream, then delivered on the retry.
    upstream.behaviour.data_replies = ["451 4.3.0 Try again later"]
    errors, _ = await gw.send(STAFF, [CAROL], message(STAFF, [CAROL], subject=SUBJECT))
    assert errors == {}
    await until(lambda: len(upstream.arrived) == 3)
    # Refused: a sender address that is not hers, and a signed message (NOTICE-SIGNED).
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as wrong_sender:
        await gw.send(STAFF, [BOB], message(BOB, [BOB]), mail_from=BOB)
    assert wrong_sender.value.code == 553
    with pytest.raises(aiosmtplib.SMTPDataError) as signed:
        await gw.send(STAFF, [BOB], signed_message())
    assert "NOTICE-SIGNED" in signed.value.message
    # Held for a line manager (external, no consent recorded); notices go to Alice and to
    # her manager, who must decide.
    errors, reply = await gw.send(STAFF, [CONTACT], message(STAFF, [CONTACT], subject=SUBJECT))
    assert errors == {} and "held for approval" in reply
    held_id = queue_id(reply)
    await until(lambda: len(upstream.arrived) == 5)
    store = gw.gateway.store
    await until(lambda: [r["state"] for r in store.query("SELECT state FROM queue")] == ["held"])

    reg = gw.gateway.register
    assert isinstance(reg, Register) and gw.gateway.metrics is not None
    await store.run(reg.checkpoint)
    await gw.gateway.metrics.verify_job()
    text = await scrape(port)
    found = samples(text)

    # Everything the register recorded since start, counted from its entries.
    entries = reg.entries()
    kinds = Counter(e.kind for e in entries)
    origins = Counter(
        "staff" if e.data["staff"] else "gateway" for e in entries if e.kind == "accepted"
    )
    assert origins == {"staff": 4, "gateway": 2}  # the hold notices are the gateway's own
    for origin, n in origins.items():
        assert value(found, "c4f_gateway_messages_accepted_total", origin=origin) == n
    refused = Counter(refusal_labels(e.data) for e in entries if e.kind == "refused")
    assert refused == {
        ("mail", "553", "5.7.1", "none"): 1,
        ("data", "554", "5.6.0", "NOTICE-SIGNED"): 1,
    }
    for (phase, code, enhanced, ref), n in refused.items():
        labels = {"phase": phase, "code": code, "enhanced": enhanced, "reference": ref}
        assert value(found, "c4f_gateway_messages_refused_total", **labels) == n
    outcomes: Counter[str] = Counter()
    for e in entries:
        if e.kind == "outcome":
            outcomes[e.data["status"]] += len(e.data["recipients"])
    assert outcomes == {"delivered": 6, "deferred": 1}  # 2 + 1 + 1 + the two notices
    for status in ("delivered", "deferred", "bounced"):
        assert (
            value(found, "c4f_gateway_recipient_outcomes_total", status=status) == outcomes[status]
        )
    delivered = [e for e in entries if e.kind == "outcome" and e.data["status"] == "delivered"]
    assert value(found, "c4f_gateway_delivery_latency_seconds_count") == len(delivered) == 5
    by_seq = {e.seq: e for e in entries}
    latency = sum(e.at - by_seq[e.ref].at for e in delivered)
    assert value(found, "c4f_gateway_delivery_latency_seconds_sum") == pytest.approx(
        latency, abs=1e-5
    )
    assert latency > 0.1  # the deferred message waited for its retry
    assert kinds["hold"] == 1
    assert value(found, "c4f_gateway_hold_steps_total", action="held") == 1
    assert value(found, "c4f_gateway_hold_steps_total", action="approved") == 0
    assert value(found, "c4f_gateway_login_failures_total") == 2

    # The queue, read at scrape time.
    states = Counter(r["state"] for r in store.query("SELECT state FROM queue"))
    assert states == {"held": 1}
    for state in ("queued", "held", "unapproved", "corrupt"):
        assert value(found, "c4f_gateway_queue_messages", state=state) == states[state]
    assert value(found, "c4f_gateway_held_messages") == 1
    age = value(found, "c4f_gateway_held_oldest_age_seconds")
    assert 0 < age < 120
    assert value(found, "c4f_gateway_queue_oldest_age_seconds", state="held") == age

    # The register's integrity.
    assert value(found, "c4f_gateway_register_verified") == 1
    assert value(found, "c4f_gateway_register_verify_problems") == 0
    assert value(found, "c4f_gateway_register_uncheckpointed_entries") == 0
    assert abs(value(found, "c4f_gateway_register_verify_timestamp_seconds") - time.time()) < 60
    newest = value(found, "c4f_gateway_register_last_checkpoint_timestamp_seconds")
    assert abs(newest - time.time()) < 60

    # Nobody is named: no address, login, subject or queue ID, anywhere in the scrape.
    lowered = text.lower()
    assert "@" not in text
    names = (STAFF, BOB, CAROL, CONTACT, INTRUDER, MANAGER, "alice", "mallory", "mona")
    for word in (*names, "hargreaves", held_id):
        assert word.lower() not in lowered, word
    assert not re.search(r"R-[0-9A-F]{4}", text)

    # Approved on the command line, in another process: counted, and the message leaves.
    done = await asyncio.to_thread(
        run_cli,
        *("held", "approve", held_id, "--by", MANAGER, "--note", "Agreed at supervision"),
        *("--config", str(gw.config_path)),
    )
    assert done.returncode == 0, done.stderr
    await until(lambda: any(a.rcpt_tos == [CONTACT] for a in upstream.arrived))
    await until(lambda: not store.query("SELECT id FROM queue"))
    approved = samples(await scrape(port))
    entries = reg.entries()
    steps = Counter(e.public.get("hold") for e in entries if e.kind == "hold")
    assert steps == {"held": 1, "approved": 1}
    assert value(approved, "c4f_gateway_hold_steps_total", action="approved") == 1
    outcomes = Counter()
    for e in entries:
        if e.kind == "outcome":
            outcomes[e.data["status"]] += len(e.data["recipients"])
    assert outcomes["delivered"] == 7  # and now the approved message
    assert value(approved, "c4f_gateway_recipient_outcomes_total", status="delivered") == 7
    assert value(approved, "c4f_gateway_held_messages") == 0
    assert value(approved, "c4f_gateway_held_oldest_age_seconds") == 0
    assert value(approved, "c4f_gateway_queue_messages", state="held") == 0

    # A register edited behind the gateway's back is reported at the next verify.
    store.execute("UPDATE register SET size = size + 1 WHERE seq = 1")
    await gw.gateway.metrics.verify_job()
    after = samples(await scrape(port))
    assert value(after, "c4f_gateway_register_verified") == 0
    assert value(after, "c4f_gateway_register_verify_problems") >= 1


def test_refusal_labels_keep_rule_references_and_drop_trace_codes() -> None:
    base = {"phase": "rcpt", "reply": "550 5.7.1 Not an approved contact [ref R-1A2B]"}
    assert refusal_labels({**base, "reference": "R-1A2B"}) == (
        "rcpt",
        "550",
        "5.7.1",
        "per-refusal",
    )
    assert refusal_labels({**base, "reference": "R-ABCD"})[3] == "per-refusal"
    assert refusal_labels({**base, "reference": "DISC-TAG"})[3] == "DISC-TAG"
    assert refusal_labels({**base, "reference": "bob@c4f.example"})[3] == "other"
    assert refusal_labels({**base, "reference": ""})[3] == "none"
    assert refusal_labels({"phase": "bob@x", "reply": "bob@x"}) == ("other", "", "", "none")


def test_metrics_are_off_by_default_and_a_bad_address_names_its_key(tmp_path: Path) -> None:
    assert not Settings().metrics.enabled
    path = tmp_path / "gateway.toml"
    path.write_text('[upstream]\nhost = "smtp.example"\n[metrics]\nlisten = "9187"\n')
    with pytest.raises(
        ConfigError, match=r"gateway\.toml: metrics\.listen: '9187' is not HOST:PORT"
    ):
        load(path)
    path.write_text('[upstream]\nhost = "smtp.example"\n[metrics]\nverify_interval = 0\n')
    with pytest.raises(ConfigError, match=r"metrics\.verify_interval: must be greater than zero"):
        load(path)
    path.write_text('[upstream]\nhost = "smtp.example"\n[metrics]\nlisten = "127.0.0.1:9187"\n')
    assert load(path).metrics.host_port == ("127.0.0.1", 9187)


async def test_serve_opens_the_endpoint_only_when_configured(tmp_path: Path, ca: TestCA) -> None:
    """The real `serve` command: it says where the endpoint listens, and counts a message."""
    config = prepare(tmp_path / "on", ca, config={"metrics": {"listen": "127.0.0.1:0"}})
    gw = await GatewayProcess(config).start()
    try:
        line = re.compile(r"listening \(metrics\) on 127\.0\.0\.1:(\d+)")
        await until(lambda: line.search(gw.output()) is not None)
        match = line.search(gw.output())
        assert match is not None
        port = int(match[1])
        client = await connect(gw.port, ca)
        try:
            await client.sendmail(STAFF, [BOB], message(STAFF, [BOB]).as_bytes())
        finally:
            client.close()
        delivered = gw.settings.delivery.maildir / "new"
        await until(lambda: delivered.exists() and len(list(delivered.iterdir())) == 1)

        async def counted() -> Samples:
            return samples(await scrape(port))

        found = await counted()
        deadline = time.monotonic() + 10
        outcome = ("c4f_gateway_recipient_outcomes_total", (("status", "delivered"),))
        while found.get(outcome) != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            found = await counted()
        assert value(found, "c4f_gateway_messages_accepted_total", origin="staff") == 1
        assert value(found, "c4f_gateway_recipient_outcomes_total", status="delivered") == 1
    finally:
        assert await gw.stop() == 0

    off = GatewayProcess(prepare(tmp_path / "off", ca))
    await off.start()
    try:
        assert "metrics" not in off.ports
        assert "(metrics)" not in off.output()
    finally:
        assert await off.stop() == 0
