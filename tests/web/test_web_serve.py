"""Serving the console: the `web` command as a process, and HTTPS with the gateway's
certificate (TLS 1.2 and newer only, as the SMTP listeners)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import httpx2 as httpx
import pytest
from support.pki import TestCA
from support.web import make_site, prepare

from gateway.cli import main
from gateway.settings.web import WebSettings
from gateway.web.app import create_app
from gateway.web.server import ConsoleServer, config

PYTHON = Path(sys.executable)


def test_web_command_serves_until_sigterm(tmp_path: Path, ca: TestCA) -> None:
    settings = prepare(tmp_path / "gw", ca)
    proc = subprocess.Popen(
        [
            str(PYTHON),
            "-m",
            "gateway",
            "web",
            "--config",
            str(settings.source),
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while len(lines) < 10 and not (lines and lines[-1].startswith("c4f-gateway:")):
            lines.append(proc.stdout.readline())  # start-up log lines come first
        line = lines[-1]
        assert line.startswith("c4f-gateway: review console on http://127.0.0.1:"), lines
        url = line.split(" on ")[1].strip()
        reply = httpx.get(url + "register", follow_redirects=False, timeout=10)
        assert (reply.status_code, reply.headers["location"]) == (303, "/signin")
        assert "server" not in reply.headers  # no software banner
        signin = httpx.get(url + "signin", timeout=10)
        assert signin.status_code == 200 and "<h1>Sign in</h1>" in signin.text
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The request log: JSON lines with method, path and status, no query strings.
    assert '"event": "web_request"' in out and '"path": "/register"' in out
    assert proc.returncode in (0, -signal.SIGTERM)


def test_web_command_refuses_a_bad_listen_address(
    tmp_path: Path, ca: TestCA, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = prepare(tmp_path / "gw", ca)
    assert main(["web", "--config", str(settings.source), "--listen", "nowhere"]) == 1
    assert "web.listen: 'nowhere' is not HOST:PORT" in capsys.readouterr().err


def test_uvicorn_is_configured_quietly_and_without_proxy_trust(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca)
    cfg = config(create_app(site.console), site.settings, https=False, host="127.0.0.1", port=0)
    assert cfg.access_log is False  # paths are logged by the console itself
    assert cfg.proxy_headers is False  # X-Forwarded-For must not dodge the throttle
    assert cfg.server_header is False


async def test_https_with_the_gateway_certificate(tmp_path: Path, ca: TestCA) -> None:
    site = make_site(tmp_path / "gw", ca, web=WebSettings(tls=True, require_totp=()))
    server = ConsoleServer(
        create_app(site.console), site.settings, https=True, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        verify = ssl.create_default_context(cafile=str(ca.ca_file))
        async with httpx.AsyncClient(verify=verify) as client:
            reply = await client.get(server.url + "/signin")
        assert reply.status_code == 200
        assert reply.headers["strict-transport-security"] == "max-age=31536000"
        old = ssl.create_default_context(cafile=str(ca.ca_file))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is, on purpose
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        async with httpx.AsyncClient(verify=old) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(server.url + "/signin")
    finally:
        await server.stop()
