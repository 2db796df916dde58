"""The production install: a built wheel in a fresh venv outside the checkout.

Nothing here may come from the checkout: the notice and the fax-service list are package
data, the commands run from a temp folder with an environment that cannot reach the
repository, and the gateway they import is the venv's own copy.
"""

from __future__ import annotations

import re
import signal
import smtplib
import ssl
import subprocess
import time
import tomllib
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from support.wheel import REPO, InstalledGateway, installed_gateway

from gateway.mail.disclaimer_notice import Notice

__all__ = ["installed_gateway"]  # the fixture, imported for pytest

pytestmark = pytest.mark.slow

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
NOTICE = Notice.from_text((REPO / "gateway" / "shipped" / "disclaimer.txt").read_text())
_LISTENING = re.compile(r"^c4f-gateway: listening \((\w+)\) on (\S+):(\d+)$", re.MULTILINE)


def test_wheel_holds_every_module_and_the_shipped_data(installed_gateway: InstalledGateway) -> None:
    names = set(zipfile.ZipFile(installed_gateway.wheel).namelist())
    assert {
        "gateway/shipped/confidentiality-policy.txt",
        "gateway/shipped/disclaimer.txt",
        "gateway/shipped/fax-providers.txt",
        "gateway/shipped/public-domains.txt",
    } <= names
    sources = {
        str(p.relative_to(REPO))
        for pattern in ("gateway/**/*.py", "filters/**/*.py", "gateway/web/*/*.*")
        for p in REPO.glob(pattern)
        if "__pycache__" not in p.parts
    }
    assert sources - names == set(), "modules or console files missing from the wheel"
    assert not any(n.startswith(("config/", "tests/", "deploy/")) for n in names)


def test_installed_gateway_is_the_venvs_own_copy(installed_gateway: InstalledGateway) -> None:
    probe = (
        "import gateway, filters.fax_route as f, gateway.mail.disclaimer_notice as d\n"
        "print(gateway.__file__); print(f.DEFAULT_PROVIDERS_FILE); print(d.DEFAULT_FILE)"
    )
    done = subprocess.run(
        [str(installed_gateway.python), "-c", probe],
        cwd=installed_gateway.home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert len(paths) == 3
    for path in paths:
        assert path.is_relative_to(installed_gateway.venv), path
        assert path.is_file(), path


def test_init_check_config_serve_and_relay_from_the_wheel(
    installed_gateway: InstalledGateway,
) -> None:
    gw = installed_gateway
    version = gw.run("--version")
    assert (version.returncode, version.stdout, version.stderr) == (
        0,
        f"c4f-gateway {VERSION}\n",
        "",
    )

    setup = gw.home / "setup"
    init = gw.run("init", "--dir", setup, "--port", "0", "--implicit-port", "0", "--demo")
    assert init.returncode == 0, init.stderr
    login = re.search(r"^Demo staff account: (\S+)$", init.stdout, re.MULTILINE)
    password = re.search(r"^Password: (\S+)$", init.stdout, re.MULTILINE)
    assert login and password, init.stdout
    config = setup / "gateway.toml"

    checked = gw.run("check-config", "--config", config)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().splitlines()[-1] == f"{config}: ok"

    log = setup / "serve.log"
    proc = gw.popen("serve", "--config", config, log=log)
    try:
        ports = wait_for_listeners(proc, log)
        token = f"WHEEL-{time.time_ns()}"
        send(ports["starttls"], setup / "tls" / "cert.pem", login[1], password[1], token)
        relayed = wait_for_file(setup / "delivered" / "new", proc, log)
        assert token.encode() in relayed
        # The notice, read by the installed gateway from its package data, exactly once.
        lines = relayed.replace(b"\r\n", b"\n")
        assert lines.count(NOTICE.plain("\n").encode("ascii")) == 1
        assert relayed.count(NOTICE.paragraphs[0][:60].encode("ascii")) == 1
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a gateway running after the test
            proc.wait(timeout=10)
            raise
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert token not in log.read_text(errors="replace")  # no body in the log


def wait_for_listeners(proc: subprocess.Popen[bytes], log: Path) -> dict[str, int]:
    """Both listeners' ports, from the lines ``serve`` prints once it is listening."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _LISTENING.findall(log.read_text(errors="replace"))
        if len(found) >= 2:
            return {kind: int(port) for kind, _host, port in found}
        assert proc.poll() is None, f"serve exited:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"serve did not listen:\n{log.read_text(errors='replace')[-3000:]}")


def send(port: int, cert: Path, login: str, password: str, token: str) -> None:
    """A staff client: STARTTLS verifying init's certificate for localhost, then AUTH."""
    msg = EmailMessage()
    msg["From"] = login
    msg["To"] = f"colleague@{login.split('@')[1]}"
    msg["Subject"] = "Installed from the wheel"
    msg.set_content(f"{token}\n")
    tls = ssl.create_default_context(cafile=str(cert))
    with smtplib.SMTP("localhost", port, timeout=30) as client:
        client.starttls(context=tls)
        client.login(login, password)
        refused = client.send_message(msg)
    assert refused == {}


def wait_for_file(folder: Path, proc: subprocess.Popen[bytes], log: Path) -> bytes:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = sorted(folder.iterdir()) if folder.exists() else []
        if files:
            assert len(files) == 1, files
            return files[0].read_bytes()
        assert proc.poll() is None, f"serve exited:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"nothing relayed:\n{log.read_text(errors='replace')[-3000:]}")
