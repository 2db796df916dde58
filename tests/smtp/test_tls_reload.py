"""SIGHUP (``systemctl reload``) reads the listeners' certificate and key again (issue 12).

Certificate renewal without a restart: the real ``serve`` process, its certificate files
replaced, SIGHUP; a new TLS connection (implicit TLS and STARTTLS) presents the new
certificate, a session opened before goes on, a delivery in progress and the queue are
untouched. A new pair that does not load is logged and the certificate in use is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import signal
from pathlib import Path

import aiosmtplib
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from support.harness import message
from support.pki import Issued, TestCA
from support.subprocess_gateway import GatewayProcess, client_tls, connect, prepare
from support.upstream import Upstream

ALICE = "alice@c4f.example"
BOB = "bob@partner.test"


def fingerprint_of(pem: Path) -> str:
    """SHA-256 of the first certificate in a PEM file (the server's, before its chain)."""
    return x509.load_pem_x509_certificate(pem.read_bytes()).fingerprint(hashes.SHA256()).hex()


async def implicit_tls_cert(port: int, ca: TestCA) -> str:
    """SHA-256 of the certificate a new implicit-TLS connection is given."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_tls(ca), server_hostname="localhost"
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return hashlib.sha256(der).hexdigest()


def session_cert(client: aiosmtplib.SMTP) -> str:
    assert client.transport is not None
    der = client.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


def install(issued: Issued, folder: Path) -> str:
    """Replace the files the config names, as a renewal hook would (rename); returns the
    certificate's SHA-256. (TestCA.issue reuses its file names: copy at once.)"""
    for src, name in ((issued.cert, "cert.pem"), (issued.key, "key.pem")):
        shutil.copyfile(src, folder / f".{name}.new")
        (folder / f".{name}.new").chmod(0o600)
        (folder / f".{name}.new").replace(folder / name)
    return fingerprint_of(folder / "cert.pem")


async def wait_for_log(gw: GatewayProcess, event: str, count: int) -> None:
    for _ in range(500):
        if gw.output().count(f'"{event}"') >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {event} in the log:\n{gw.output()[-2000:]}")


async def test_sighup_serves_a_renewed_certificate_and_keeps_sessions_and_queue(
    tmp_path: Path, ca: TestCA, upstream: Upstream
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    old = install(ca.issue("localhost", sans=["localhost", "127.0.0.1"]), tls)
    config = prepare(
        tmp_path / "gw",
        ca,
        upstream_port=upstream.port,
        config={"tls": {"cert_file": str(tls / "cert.pem"), "key_file": str(tls / "key.pem")}},
    )
    gw = await GatewayProcess(config).start()
    try:
        implicit = gw.ports["implicit_tls"]
        assert await implicit_tls_cert(implicit, ca) == old
        before = await connect(gw.port, ca)  # STARTTLS + AUTH, kept open across the reload
        assert session_cert(before) == old

        # A message queued before the reload, its delivery still in progress during it.
        upstream.behaviour.data_delay = 1.0
        _, reply = await before.sendmail(ALICE, [BOB], message(ALICE, [BOB]).as_bytes())
        assert reply.startswith("2.0.0 Queued as") or "Queued as" in reply

        new = install(ca.issue("localhost", sans=["localhost", "127.0.0.1"]), tls)
        assert new != old
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGHUP)
        await wait_for_log(gw, "tls_reloaded", 1)
        assert new in gw.output()

        assert await implicit_tls_cert(implicit, ca) == new
        after = await connect(gw.port, ca)
        assert session_cert(after) == new
        await after.quit()

        # The session opened before goes on, still on the old certificate.
        assert session_cert(before) == old
        upstream.behaviour.data_delay = 0.0
        _, reply = await before.sendmail(
            ALICE, [BOB], message(ALICE, [BOB], subject="second").as_bytes()
        )
        assert "Queued as" in reply
        await before.quit()
        arrived = await upstream.wait_for(2)
        assert len(arrived) == 2 and all(a.rcpt_tos == [BOB] for a in arrived)

        # A broken renewal: the error is logged, the certificate in use is kept.
        (tls / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
        gw.proc.send_signal(signal.SIGHUP)
        await wait_for_log(gw, "tls_reload_failed", 1)
        assert await implicit_tls_cert(implicit, ca) == new
        renewed = tls.parent / "renewed.pem"
        shutil.copyfile(tls / "key.pem", renewed)  # the key of the certificate in use
        stranger = ca.issue("stranger.test", sans=["localhost"])
        shutil.copyfile(stranger.cert, tls / "cert.pem")  # a certificate without its key
        shutil.copyfile(renewed, tls / "key.pem")
        gw.proc.send_signal(signal.SIGHUP)
        await wait_for_log(gw, "tls_reload_failed", 2)
        assert await implicit_tls_cert(implicit, ca) == new
        assert gw.proc.returncode is None
        assert len(upstream.arrived) == 2  # nothing sent twice
    finally:
        assert await gw.stop() == 0
