"""deploy/README.md, followed to the letter: every command of it, in order.

The commands run against the wheel installed in a fresh venv (``support.wheel``), with
the production paths moved into a temp root (``support.deploy.rewrite``) and the source
folder as the working directory. What a test cannot do to the machine is replaced by
what it stands for, and said so here:

- ``apt-get``: the tools it installs must be present; ``useradd``: the service user is the
  user running the tests (``-o/-g c4f-gateway`` and ``runuser -u c4f-gateway --`` map to it);
- ``python3 -m venv`` and ``pip install -c requirements.lock .``: done by the
  ``installed_gateway`` fixture, with the same lock;
- ``editor``: the operator's edits, plus pointing the config at the local smarthost and
  free loopback ports;
- ``systemctl enable --now UNIT...``: each unit's ``ExecStartPre`` runs (and must pass) and
  its ``ExecStart`` starts, both parsed from the unit file the README installed;
- ``swaks``: its server is the gateway's bound port, and its password is given on the
  command line instead of typed.

The smarthost is :class:`support.fakesmtp.FakeSmarthost`: STARTTLS with a test-CA
certificate, ``AUTH PLAIN`` required, as Microsoft 365 does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.deploy import DEPLOY, ETC, REPO, STATE, rewrite, temp_root, unit_command
from support.fakesmtp import FakeSmarthost, Script
from support.pki import TestCA
from support.wheel import InstalledGateway, clean_env, installed_gateway

pytestmark = pytest.mark.slow
__all__ = ["installed_gateway"]  # the fixture, imported for this module

README = DEPLOY / "README.md"
RELAY = ("relay-account@centre.example", "relay password for tests")
PASSWORD = "alice's long password"
ADMIN_PASSWORD = "the office manager's password"


def readme_commands() -> list[str]:
    """Every line of every ```sh block, in order (comments and blank lines skipped)."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(encoding="utf-8"), re.M | re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Walk:
    """The machine the README is followed on: a temp root, the venv, the smarthost."""

    root: Path
    gateway: InstalledGateway
    ca: TestCA
    smarthost: FakeSmarthost
    ports: dict[str, int]
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The certificate the README copies from /root: one, for the gateway's hostname.
        self.cert = self.ca.issue(
            "mail-gateway.centre.example",
            sans=["mail-gateway.centre.example"],
            not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=90),  # health wants > 14
        )

    @property
    def config(self) -> Path:
        return Path(f"{self.root}{ETC}/gateway.toml")

    def translate(self, command: str) -> list[str]:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        cert = self.cert
        text = rewrite(command, self.root, self.gateway.venv)
        text = (
            text.replace("runuser -u c4f-gateway -- ", "")
            .replace("-o c4f-gateway", f"-o {user}")
            .replace("-g c4f-gateway", f"-g {group}")
            .replace("/etc/systemd/system/", f"{self.root}/etc/systemd/system/")
            .replace("/root/mail-gateway.crt", str(cert.cert))
            .replace("/root/mail-gateway.key", str(cert.key))
        )
        return shlex.split(text)

    async def run(
        self, argv: list[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=REPO,
            env=clean_env(),
        )

    def edit_config(self) -> None:
        """The operator's edits in ``editor``, and this test's root, smarthost and ports."""
        text = rewrite(self.config.read_text(encoding="utf-8"), self.root, self.gateway.venv)
        for old, new in (
            ('starttls = ["0.0.0.0:587"]', f'starttls = ["127.0.0.1:{self.ports["starttls"]}"]'),
            (
                'implicit_tls = ["0.0.0.0:465"]',
                f'implicit_tls = ["127.0.0.1:{self.ports["implicit_tls"]}"]',
            ),
            ('listen = "127.0.0.1:8025"', f'listen = "127.0.0.1:{self.ports["web"]}"'),
            ('host = "smtp.office365.com"', 'host = "localhost"'),
            ("port = 587", f"port = {self.smarthost.port}"),
            ('ca_file = ""', f'ca_file = "{self.ca.ca_file}"'),
        ):
            line = re.compile(f"^{re.escape(old)}$", re.MULTILINE)
            text, count = line.subn(new.replace("\\", "\\\\"), text)
            assert count == 1, old
        self.config.write_text(text, encoding="utf-8")
        assert not re.search(f'"({ETC}|{STATE})', text)  # every path is in the temp root

    async def start_units(self, names: list[str]) -> None:
        for name in names:
            unit = Path(f"{self.root}/etc/systemd/system/{name}.service")
            pre = unit_command(unit, "ExecStartPre", self.root, self.gateway.venv)
            done = await self.run(pre)
            assert (name, done.returncode, done.stdout) == (name, 0, f"{self.config}: ok\n")
            log = self.root / f"{name}.log"
            start = unit_command(unit, "ExecStart", self.root, self.gateway.venv)
            with log.open("wb") as out:
                self.procs[name] = await asyncio.create_subprocess_exec(
                    *start, stdout=out, stderr=subprocess.STDOUT, cwd="/", env=clean_env()
                )
            self.logs[name] = log
        await self.wait_for_log(
            "c4f-gateway", f"listening (starttls) on 127.0.0.1:{self.ports['starttls']}"
        )
        await self.wait_for_log(
            "c4f-gateway", f"listening (implicit_tls) on 127.0.0.1:{self.ports['implicit_tls']}"
        )
        await self.wait_for_log(
            "c4f-gateway-web", f"review console on http://127.0.0.1:{self.ports['web']}/"
        )

    async def wait_for_log(self, name: str, text: str, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.logs[name].read_text(encoding="utf-8", errors="replace"):
            proc = self.procs[name]
            if proc.returncode is not None or loop.time() > deadline:
                raise AssertionError(
                    f"{name}: {text!r} never came:\n{self.logs[name].read_text()[-3000:]}"
                )
            await asyncio.sleep(0.1)

    async def stop_units(self) -> dict[str, int]:
        codes = {}
        for name, proc in self.procs.items():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            codes[name] = await asyncio.wait_for(proc.wait(), 30)
        return codes


Check = Callable[[Walk, subprocess.CompletedProcess[str]], None]


def ok(expected: str = "") -> Check:
    """Exit 0, and ``expected`` in the output."""

    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout, done.stdout

    return check


def mode(path: str, bits: int, *, directory: bool = False) -> Check:
    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stderr
        target = Path(walk.translate(path)[0])
        assert target.is_dir() == directory
        assert stat.S_IMODE(target.stat().st_mode) == bits, path

    return check


def health(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith("ok  ") for line in lines), done.stdout
    names = {line.split()[1].rstrip(":") for line in lines}
    assert {"database", "register", "upstream"} <= names, names


# What each README command must do, in order: (how the command starts, stdin, check).
# A command the README gains or loses without this list following fails the test.
EXPECTED: list[tuple[str, str | None, Check | str]] = [
    ("apt-get update", None, "machine"),
    ("apt-get install", None, "machine"),
    ("useradd --system", None, "machine"),
    (f"install -d -m 0755 {ETC}", None, mode(ETC, 0o755, directory=True)),
    ("install -d -m 0700 -o c4f-gateway", None, mode(STATE, 0o700, directory=True)),
    ("python3 -m venv /opt/c4f-gateway/venv", None, "installed"),
    ("/opt/c4f-gateway/venv/bin/pip install --quiet -c requirements.lock .", None, "installed"),
    ("/opt/c4f-gateway/venv/bin/c4f-gateway --version", None, ok("c4f-gateway ")),
    (
        "install -m 0640 -g c4f-gateway deploy/examples/office365.toml",
        None,
        mode(f"{ETC}/gateway.toml", 0o640),
    ),
    ("install -m 0644 gateway/shipped/disclaimer.txt", None, mode(f"{ETC}/disclaimer.txt", 0o644)),
    (f"editor {ETC}/gateway.toml", None, "editor"),
    (
        "install -m 0600 -o c4f-gateway -g c4f-gateway /dev/stdin",
        "\n".join(RELAY) + "\n",
        mode(f"{ETC}/keys/upstream-credentials", 0o600),
    ),
    (
        "runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway init --config",
        None,
        ok("Set up the keys, database and folders"),
    ),
    ("install -m 0644 /root/mail-gateway.crt", None, mode(f"{ETC}/tls/cert.pem", 0o644)),
    (
        "install -m 0600 -o c4f-gateway -g c4f-gateway /root/mail-gateway.key",
        None,
        mode(f"{ETC}/tls/key.pem", 0o600),
    ),
    (
        "runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway staff add",
        PASSWORD + "\n",
        ok("added alice@centre.example"),
    ),
    (
        "runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway staff add",
        ADMIN_PASSWORD + "\n",
        ok("added office.manager@centre.example"),
    ),
    (
        "runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway web totp-enrol",
        None,
        ok("otpauth://totp/"),
    ),
    (
        "runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway check-config",
        None,
        ok("/gateway.toml: ok"),
    ),
    (
        "install -m 0644 deploy/c4f-gateway.service deploy/c4f-gateway-web.service",
        None,
        mode("/etc/systemd/system/c4f-gateway-web.service", 0o644),
    ),
    ("systemctl daemon-reload", None, "machine"),
    ("systemctl enable --now c4f-gateway c4f-gateway-web", None, "systemd"),
    ("swaks --server mail-gateway.centre.example:587", None, "swaks"),
    ("runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway health", None, health),
]


@pytest.fixture
async def smarthost(ca: TestCA) -> AsyncIterator[FakeSmarthost]:
    cert = ca.issue("localhost", sans=["localhost", "127.0.0.1"])
    async with FakeSmarthost(
        FakeSmarthost.context(cert.cert, cert.key), Script(auth=RELAY)
    ) as fake:
        yield fake


async def test_deploy_readme_works_as_written(
    installed_gateway: InstalledGateway, ca: TestCA, smarthost: FakeSmarthost
) -> None:
    commands = readme_commands()
    assert [c[: len(e[0])] for c, e in zip(commands, EXPECTED, strict=False)] == [
        e[0] for e in EXPECTED
    ]
    assert len(commands) == len(EXPECTED), commands[len(EXPECTED) :]
    ports = {k: free_port() for k in ("starttls", "implicit_tls", "web")}
    real = [Path(ETC).exists(), Path(STATE).exists()]
    with temp_root() as root:
        Path(f"{root}/etc/systemd/system").mkdir(parents=True)
        Path(f"{root}/var/lib").mkdir(parents=True)
        walk = Walk(root, installed_gateway, ca, smarthost, ports)
        try:
            for command, (_start, stdin, check) in zip(commands, EXPECTED, strict=True):
                await follow(walk, command, stdin, check)
        finally:
            codes = await walk.stop_units()
        # Both stop cleanly on systemd's SIGTERM: serve exits 0, the console dies of the
        # signal, which systemd also counts as a clean stop (SuccessExitStatus' default).
        assert codes["c4f-gateway"] == 0
        assert codes["c4f-gateway-web"] in (0, -signal.SIGTERM)
    assert [Path(ETC).exists(), Path(STATE).exists()] == real


async def follow(walk: Walk, command: str, stdin: str | None, check: Check | str) -> None:
    argv = walk.translate(command)
    for arg in argv:  # never the machine's own /etc or /var/lib
        assert not arg.startswith((ETC, STATE, "/etc/systemd")), arg
    if check == "machine":  # apt-get, useradd, daemon-reload: the machine has them already
        if argv[:2] == ["apt-get", "install"]:
            for tool in ("python3", "swaks"):
                assert shutil.which(tool), tool
        return
    if check == "installed":  # the fixture made the venv and installed the locked wheel
        assert (walk.gateway.venv / "bin" / "c4f-gateway").exists()
        return
    if check == "editor":
        walk.edit_config()
        return
    if check == "systemd":
        await walk.start_units(argv[3:])
        return
    if check == "swaks":
        argv[argv.index("--server") + 1] = f"127.0.0.1:{walk.ports['starttls']}"
        done = await walk.run([*argv, "--auth-password", PASSWORD])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "=== TLS started" in done.stdout, done.stdout
        # "<~": the reply came over TLS.
        assert re.search(r"^<~  250 2\.0\.0 Queued as \S+$", done.stdout, re.M), done.stdout
        [arrived] = await walk.smarthost.wait_for(1, timeout=30)
        assert arrived.rcpt_tos == ["colleague@centre.example"]
        assert b"Subject: gateway test" in arrived.content
        # Logged in, over TLS only: nothing but EHLO and STARTTLS in clear.
        assert set(walk.smarthost.verbs(tls=False)) <= {"EHLO", "STARTTLS"}
        assert {"AUTH", "MAIL", "RCPT", "DATA"} <= set(walk.smarthost.verbs(tls=True))
        return
    assert callable(check)
    done = await walk.run(argv, stdin)
    check(walk, done)
