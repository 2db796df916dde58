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
  command line instead of typed; after the keys are re-sealed (step 11) it is sent again;
- cron: the line the README writes to ``/etc/cron.d`` is checked and its command run
  once with ``sh``, as cron would (``\\%`` read as ``%``);
- ``systemctl stop`` (step 12) stops both units as systemd would; then, as on a machine
  that ran the previous release, the database, checkpoints and keys are replaced by
  ``tests/fixtures/schema0``'s (its database has three queued messages and one held), so
  the README's ``upgrade`` really upgrades, and ``systemctl start`` must deliver them.

Paths under ``/var/backups``, ``/var/tmp`` and ``/etc/cron.d`` move into the temp root
too, and each command runs with ``sh -c`` (the README's lines are shell lines); none may
name a path outside the temp root.

The smarthost is :class:`support.fakesmtp.FakeSmarthost`: STARTTLS with a test-CA
certificate, ``AUTH PLAIN`` required, as Microsoft 365 does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import grp
import inspect
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.database import dump
from support.deploy import DEPLOY, ETC, REPO, STATE, rewrite, temp_root, unit_command
from support.fakesmtp import FakeSmarthost, Script
from support.pki import TestCA
from support.wheel import InstalledGateway, clean_env, installed_gateway

from gateway.schema_version import CURRENT

pytestmark = pytest.mark.slow
__all__ = ["installed_gateway"]  # the fixture, imported for this module

README = DEPLOY / "README.md"
FIXTURE = REPO / "tests" / "fixtures" / "schema0"
BACKUPS = "/var/backups/c4f-gateway"
KEY_BACKUPS = "/var/backups/c4f-gateway-keys"
DRILL = "/var/tmp/c4f-gateway-drill"  # noqa: S108 (the README's path, moved into the root)
CRON = "/etc/cron.d/c4f-gateway-backup"
# What the README writes outside /etc/c4f-gateway and /var/lib/c4f-gateway: moved too.
MOVED = ("/var/backups/", "/var/tmp/", "/etc/cron.d/", "/etc/systemd/system/")  # noqa: S108
GW = "runuser -u c4f-gateway -- /opt/c4f-gateway/venv/bin/c4f-gateway"
KEY_FILES = ("spool.key", "register.key", "register-mac.key")
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
    swaks: list[str] = field(default_factory=list)  # the README's swaks line, translated

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

    def at(self, path: str) -> Path:
        """Where a production path of the README is in the temp root."""
        return Path(self.text(path))

    def text(self, command: str) -> str:
        """A README line with its paths in the temp root and its user this test's."""
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        cert = self.cert
        text = rewrite(command, self.root, self.gateway.venv)
        for moved in MOVED:
            text = text.replace(moved, f"{self.root}{moved}")
        return (
            text.replace("runuser -u c4f-gateway -- ", "")
            .replace("-o c4f-gateway", f"-o {user}")
            .replace("-g c4f-gateway", f"-g {group}")
            .replace("/root/mail-gateway.crt", str(cert.cert))
            .replace("/root/mail-gateway.key", str(cert.key))
        )

    def translate(self, command: str) -> list[str]:
        return shlex.split(self.text(command))

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

    async def send(self, count: int) -> None:
        """The README's swaks line; the smarthost then has ``count`` messages."""
        argv = list(self.swaks)
        argv[argv.index("--server") + 1] = f"127.0.0.1:{self.ports['starttls']}"
        done = await self.run([*argv, "--auth-password", PASSWORD])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "=== TLS started" in done.stdout, done.stdout
        # "<~": the reply came over TLS.
        assert re.search(r"^<~  250 2\.0\.0 Queued as \S+$", done.stdout, re.M), done.stdout
        arrived = await self.smarthost.wait_for(count, timeout=30)
        assert len(arrived) == count
        assert arrived[-1].rcpt_tos == ["colleague@centre.example"]
        assert b"Subject: gateway test" in arrived[-1].content


Check = Callable[[Walk, subprocess.CompletedProcess[str]], Awaitable[None] | None]


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


def shown(*expected: str) -> Check:
    """Exit 0, and each of ``expected`` in a line of the output."""

    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout.splitlines()
        for text in expected:
            assert any(text in line for line in out), (text, done.stdout)

    return check


def each(*checks: Check) -> Check:
    """Every one of ``checks`` (none of them awaits)."""

    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        for one in checks:
            assert one(walk, done) is None

    return check


def backed_up(name: str) -> Check:
    """``backup`` wrote ``BACKUPS/name*`` and, apart, ``KEY_BACKUPS/name*``."""

    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stdout + done.stderr
        [folder] = walk.at(BACKUPS).glob(name)
        [keys] = walk.at(KEY_BACKUPS).glob(name)
        manifest = json.loads((folder / "manifest.json").read_text())
        paths = [f["path"] for f in manifest["files"]]
        checkpoints = sum(p.startswith("checkpoints/") for p in paths)
        bodies = sum(p.startswith("bodies/") for p in paths)
        assert done.stdout.splitlines() == [
            f"Backed up {walk.at(STATE)}/gateway.db (schema version "
            f"{manifest['schema_version']}), {checkpoints} checkpoint(s) and {bodies} body "
            f"file(s) to {folder}: {sum(f['size'] for f in manifest['files'])} bytes.",
            f"Key files in {keys}: keep them apart from the backup.",
        ]
        assert manifest["schema_version"] == CURRENT
        check_backup(walk, folder, keys)

    return check


def check_backup(walk: Walk, folder: Path, keys: Path) -> None:
    """A backup's files and manifest with their modes; the keys only in ``keys``."""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "c4f-gateway-backup/1"
    assert manifest["keys"] == "in a separate folder"
    listed = {f["path"] for f in manifest["files"]}
    assert "gateway.db" in listed and any(p.startswith("checkpoints/head-") for p in listed)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == listed | {"manifest.json"}
    assert sorted(p.name for p in keys.iterdir()) == sorted([*KEY_FILES, "keys-manifest.json"])
    for where in (folder, keys):
        assert stat.S_IMODE(where.stat().st_mode) == 0o700
        for p in where.rglob("*"):
            assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    live = {name: walk.at(f"{ETC}/keys/{name}").read_bytes() for name in KEY_FILES}
    for name, data in live.items():
        assert (keys / name).read_bytes() == data, name
        for p in folder.rglob("*"):
            assert p.is_dir() or data.strip() not in p.read_bytes(), (name, p)


def cron(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    """The cron line: nightly, as the service user; its command, run as cron runs it."""
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    path = walk.at(CRON)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    [line] = path.read_text().splitlines()
    found = re.fullmatch(r"30 2 \* \* \* c4f-gateway (\S.*)", line)
    assert found, line
    tonight = subprocess.run(
        ["sh", "-c", found[1].replace("\\%", "%")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
        env=clean_env(),
    )
    date = dt.date.today().isoformat()
    backed_up(date)(walk, tonight)


def drill_config(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    assert (done.returncode, done.stderr) == (0, "")
    text = walk.at(f"{DRILL}/gateway.toml").read_text()
    assert f'database = "{walk.at(DRILL)}/gateway.db"' in text
    assert f'spool_key_file = "{walk.at(DRILL)}/spool.key"' in text
    # No setting names the live database, checkpoints or keys (comments may).
    assert f'"{walk.at(STATE)}/' not in text and f'"{walk.at(ETC)}/keys/' not in text


def restored(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = done.stdout.splitlines()
    assert re.fullmatch(
        f"Restored {walk.at(DRILL)}/gateway.db from {walk.at(BACKUPS)}/installed "
        r"\(taken \S+, schema version \d+\): register verified, [1-9]\d* entries, "
        r"[1-9]\d* checkpoint\(s\) agree\.",
        line,
    ), line
    assert sorted(p.name for p in walk.at(DRILL).iterdir() if p.suffix == ".key") == sorted(
        KEY_FILES
    )
    # The live database was not touched: nothing of it was replaced or moved aside.
    assert not list(walk.at(STATE).glob("*.replaced-*"))


def gone(path: str) -> Check:
    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        assert (done.returncode, done.stderr) == (0, "")
        assert not walk.at(path).exists()

    return check


def rotated(which: str) -> Check:
    def check(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == 0, done.stdout + done.stderr
        key = walk.at(f"{ETC}/keys/{which}.key")
        found = re.fullmatch(
            f"{which} key rotated: (\\S+) seals from now on \\({key}\\)",
            done.stdout.splitlines()[0],
        )
        assert found, done.stdout
        # One line per key ("ID KEY"): the new one first, the old one kept for opening.
        lines = key.read_text().splitlines()
        assert len(lines) == 2 and lines[0].split()[0] == found[1], lines[0][:9]

    return check


async def resealed_register(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    """Re-sealed; then a message is still taken, and delivered, under the new keys."""
    shown("register: ", " re-sealed under ")(walk, done)
    await walk.send(2)


def keys_listed(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split(None, 3) for line in done.stdout.splitlines()[1:]]
    for which in ("spool", "register"):
        states = sorted((r[2], r[3]) for r in rows if r[0] == which)
        assert len(states) == 2, done.stdout
        assert states[1][0] == "current" or states[0][0] == "current", done.stdout
        [old] = [s for s in states if s[0] != "current"]
        assert old[1] == "nothing", done.stdout


def upgraded(walk: Walk, done: subprocess.CompletedProcess[str]) -> None:
    """The previous release's database, upgraded after a backup of it."""
    assert done.returncode == 0, done.stdout + done.stderr
    db = walk.at(f"{STATE}/gateway.db")
    [folder] = walk.at(BACKUPS).glob("before-upgrade-*")
    [keys] = walk.at(KEY_BACKUPS).glob("before-upgrade-*")
    out = done.stdout.splitlines()
    assert out[0] == f"Backed up {db} (schema version 0) to {folder}.", out
    steps = out[1:-1]
    assert steps and [ln.split(":")[0] for ln in steps] == [
        f"Step {n}" for n in range(1, len(steps) + 1)
    ]
    assert out[-1] == f"Upgraded {db} from schema version 0 to {len(steps)}.", out
    assert json.loads((folder / "manifest.json").read_text())["schema_version"] == 0
    assert dump(folder / "gateway.db") == dump(FIXTURE / "gateway.db")
    assert sorted(p.name for p in keys.iterdir()) == sorted([*KEY_FILES, "keys-manifest.json"])


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
    # 10. Backups
    (
        f"install -d -m 0700 -o c4f-gateway -g c4f-gateway {BACKUPS} ",
        None,
        each(mode(BACKUPS, 0o700, directory=True), mode(KEY_BACKUPS, 0o700, directory=True)),
    ),
    ("echo '30 2 * * * c4f-gateway ", None, cron),
    (
        f"{GW} backup --config {ETC}/gateway.toml --to {BACKUPS}/installed ",
        None,
        backed_up("installed"),
    ),
    (
        f"install -d -m 0700 -o c4f-gateway -g c4f-gateway {DRILL}",
        None,
        mode(DRILL, 0o700, directory=True),
    ),
    ("sed -e 's|/var/lib/c4f-gateway/|", None, drill_config),
    (f"{GW} restore --config {DRILL}/gateway.toml --from {BACKUPS}/installed ", None, restored),
    (
        f"{GW} register verify --config {DRILL}/",
        None,
        shown("Register verified: ", " chain intact, "),
    ),
    (f"rm -r {DRILL}", None, gone(DRILL)),
    # 11. Key rotation
    (f"{GW} keys rotate spool ", None, rotated("spool")),
    (f"{GW} keys rotate register ", None, rotated("register")),
    (f"{GW} keys reseal spool ", None, shown("spool: ", " re-sealed under ")),
    (f"{GW} keys reseal register ", None, resealed_register),
    (f"{GW} keys list ", None, keys_listed),
    (
        f"{GW} register verify --config {ETC}/",
        None,
        shown("Register verified: ", " chain intact, "),
    ),
    (
        f"{GW} backup --config {ETC}/gateway.toml --to {BACKUPS}/rotated-",
        None,
        backed_up("rotated-*"),
    ),
    # 12. Upgrading
    ("systemctl stop c4f-gateway c4f-gateway-web", None, "stop"),
    ("/opt/c4f-gateway/venv/bin/pip install --quiet -c requirements.lock .", None, "installed"),
    (
        f"{GW} upgrade --config {ETC}/gateway.toml --backup-to {BACKUPS}/before-upgrade-",
        None,
        upgraded,
    ),
    ("systemctl start c4f-gateway c4f-gateway-web", None, "start"),
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
    outside = (ETC, STATE, BACKUPS, KEY_BACKUPS, DRILL, CRON)
    real = [Path(p).exists() for p in outside]
    with temp_root() as root:
        for folder in (
            "/etc/systemd/system",
            "/etc/cron.d",
            "/var/lib",
            "/var/backups",
            "/var/tmp",  # noqa: S108 (in the temp root)
        ):
            Path(f"{root}{folder}").mkdir(parents=True)
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
    assert [Path(p).exists() for p in outside] == real


async def follow(walk: Walk, command: str, stdin: str | None, check: Check | str) -> None:
    text = walk.text(command)
    argv = shlex.split(text)
    # Never a path of the machine's own (/etc, /var, /root, /opt, /srv): only the temp root's.
    assert not re.search(r"(?<![\w.-])/(etc|var|root|opt|srv)/", text), text
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
    if check in ("systemd", "start"):
        # "systemctl enable --now UNIT..." or "systemctl start UNIT...": every unit named.
        await walk.start_units([a for a in argv[2:] if not a.startswith("--")])
        if check == "start":  # the upgraded database's queued messages go out
            await delivered_after_upgrade(walk)
        return
    if check == "stop":
        codes = await walk.stop_units()
        assert codes["c4f-gateway"] == 0 and codes["c4f-gateway-web"] in (0, -signal.SIGTERM)
        previous_release(walk)
        # Not upgraded yet: the units' check refuses to start, and says what to do.
        unit = walk.at("/etc/systemd/system/c4f-gateway.service")
        pre = await walk.run(unit_command(unit, "ExecStartPre", walk.root, walk.gateway.venv))
        assert pre.returncode == 2, pre.stdout + pre.stderr
        assert "database schema version 0 is older than this gateway's" in pre.stderr
        assert "run 'c4f-gateway upgrade" in pre.stderr
        return
    if check == "swaks":
        walk.swaks = argv
        await walk.send(1)
        # Logged in, over TLS only: nothing but EHLO and STARTTLS in clear.
        assert set(walk.smarthost.verbs(tls=False)) <= {"EHLO", "STARTTLS"}
        assert {"AUTH", "MAIL", "RCPT", "DATA"} <= set(walk.smarthost.verbs(tls=True))
        return
    assert callable(check)
    done = await walk.run(["sh", "-c", text], stdin)
    result = check(walk, done)
    if inspect.isawaitable(result):
        await result


def previous_release(walk: Walk) -> None:
    """The machine as the previous release left it: tests/fixtures/schema0's database,
    register checkpoints and keys where the config names them."""
    state = walk.at(STATE)
    for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm"):
        (state / name).unlink(missing_ok=True)
    shutil.copyfile(FIXTURE / "gateway.db", state / "gateway.db")
    checkpoints = state / "register-checkpoints"
    shutil.rmtree(checkpoints)
    checkpoints.mkdir(mode=0o700)
    for source in (FIXTURE / "register-checkpoints").iterdir():
        shutil.copyfile(source, checkpoints / source.name)
    for name in KEY_FILES:
        key = walk.at(f"{ETC}/keys/{name}")
        key.write_bytes((FIXTURE / "keys" / name).read_bytes())
        key.chmod(0o600)


async def delivered_after_upgrade(walk: Walk) -> None:
    """The fixture's three queued messages are read, opened and delivered."""
    try:
        arrived = await walk.smarthost.wait_for(2 + 3, timeout=60)
    except TimeoutError:
        log = walk.logs["c4f-gateway"].read_text(errors="replace")[-4000:]
        raise AssertionError(f"{len(walk.smarthost.delivered())} delivered:\n{log}") from None
    await asyncio.sleep(0.5)
    assert len(walk.smarthost.delivered()) == 5
    assert sorted(a.rcpt_tos[0] for a in arrived[2:]) == sorted(
        ["j.smith@partner.example.org", "sam@c4f.example", "bob@c4f.example"]
    )
    assert any(b"Subject: Visit arrangements" in a.content for a in arrived[2:])
