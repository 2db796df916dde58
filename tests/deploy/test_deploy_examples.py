"""deploy/examples and the units: complete, consistent, and checked before serve starts.

The Office 365 example is laid out as deploy/README.md lays it out (config and keys in a
read-only /etc/c4f-gateway, state in /var/lib/c4f-gateway), moved into a temp root, and
run as the service user. Then each path it names is removed or made unwritable in turn:
``check-config`` must name the setting every time, and ``serve`` must stop on the same
line before it listens (it runs the same code).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.deploy import (
    DEPLOY,
    ETC,
    REPO,
    STATE,
    ServiceUser,
    rewrite,
    temp_root,
    unit_lines,
    without_review_due,
)
from support.subprocess_gateway import gateway_command, run_cli

from gateway.settings import load

EXAMPLES = DEPLOY / "examples"
SHIPPED = REPO / "gateway" / "shipped"
USER = ServiceUser()
CREDENTIALS = "relay@centre.example\nnot-a-real-password\n"


def production_setup(root: Path, example: str) -> Path:
    """The example in ``root`` as the README installs it, ``init --config`` run; its path."""
    etc, state = Path(f"{root}{ETC}"), Path(f"{root}{STATE}")
    for folder in (etc / "keys", etc / "tls", state):
        folder.mkdir(parents=True, mode=0o700)
    config = etc / "gateway.toml"
    text = rewrite((EXAMPLES / example).read_text(encoding="utf-8"), root, root)
    config.write_text(re.sub(r'"0\.0\.0\.0:\d+"', '"127.0.0.1:0"', text), encoding="utf-8")
    for name in ("disclaimer.txt", "fax-providers.txt"):
        shutil.copy(SHIPPED / name, etc / name)
    creds = etc / "keys" / "upstream-credentials"
    creds.write_text(CREDENTIALS, encoding="utf-8")
    creds.chmod(0o600)
    for folder in (etc / "keys", etc / "tls", state):
        USER.own(folder)
    if USER.root:  # root:c4f-gateway 0640, as the README installs it
        os.chown(config, 0, USER.gid)
        config.chmod(0o640)
    USER.read_only(etc)
    done = USER.run([*gateway_command(), "init", "--config", str(config)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Set up the keys, database and folders {config} names.")
    return config


def check(config: Path, command: str) -> tuple[int, str, str]:
    done = USER.run([*gateway_command(), command, "--config", str(config)])
    return done.returncode, done.stdout, without_review_due(done.stderr)


@pytest.fixture
def office365() -> Iterator[Path]:
    with temp_root() as root:
        yield production_setup(root, "office365.toml")


def test_office365_example_as_installed_passes_check_config(office365: Path) -> None:
    assert check(office365, "check-config") == (0, f"{office365}: ok\n", "")
    etc = office365.parent
    state = Path(str(etc).replace(ETC, STATE))
    # init put the keys in /etc (read-only to the service) and the state in /var/lib.
    assert sorted(p.name for p in (etc / "keys").iterdir()) == [
        "register-mac.key",
        "register.key",
        "spool.key",
        "upstream-credentials",
    ]
    assert (state / "gateway.db").is_file()
    assert (state / "register-checkpoints").is_dir()
    assert not (etc / "gateway.db").exists()


# (what is done, the setting named, the path relative to the temp root)
BROKEN = [
    ("remove", "tls.cert_file", f"{ETC}/tls/cert.pem"),
    ("remove", "tls.key_file", f"{ETC}/tls/key.pem"),
    ("remove", "storage.spool_key_file", f"{ETC}/keys/spool.key"),
    ("remove", "register.key_file", f"{ETC}/keys/register.key"),
    ("remove", "register.mac_key_file", f"{ETC}/keys/register-mac.key"),
    ("remove", "upstream.credentials_file", f"{ETC}/keys/upstream-credentials"),
    ("remove", "filter.fax_route.providers_file", f"{ETC}/fax-providers.txt"),
    ("remove", "filter.disclaimer.file", f"{ETC}/disclaimer.txt"),
    ("read_only", "storage.database", STATE),
    ("read_only", "storage.database", f"{STATE}/gateway.db"),
    ("read_only", "register.checkpoint_dir", f"{STATE}/register-checkpoints"),
    # A path left out of the config lands next to it, in read-only /etc (issue 12).
    ("unset", "storage.database", "database"),
    ("unset", "register.checkpoint_dir", "checkpoint_dir"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("how", "key", "path"), BROKEN, ids=[f"{h}-{k}" for h, k, _ in BROKEN])
def test_each_path_of_the_example_broken_stops_check_config_and_serve_alike(
    office365: Path, how: str, key: str, path: str
) -> None:
    root = Path(str(office365).removesuffix(f"{ETC}/gateway.toml"))
    target = Path(f"{root}{path}")
    if how == "remove":
        target.unlink()
    elif how == "read_only":
        USER.read_only(target)
    else:
        text = office365.read_text(encoding="utf-8")
        line = re.compile(rf"^{path} = .*\n", re.MULTILINE)
        assert len(line.findall(text)) == 1
        office365.write_text(line.sub("", text), encoding="utf-8")
    lines = {}
    for command in ("check-config", "serve"):
        code, out, err = check(office365, command)
        assert (command, code, out) == (command, 1, "")
        [line] = err.splitlines()
        prefix = f"c4f-gateway {command}: config error: "
        assert line.startswith(f"{prefix}{office365}: {key}: "), line
        lines[command] = line.removeprefix(prefix)
    assert lines["check-config"] == lines["serve"]


# The development example: paths next to the config, relayed mail into a Maildir.
BROKEN_DEV = [
    ("remove", "tls.cert_file", "tls/cert.pem"),
    ("remove", "storage.spool_key_file", "keys/spool.key"),
    ("remove", "register.mac_key_file", "keys/register-mac.key"),
    ("read_only", "storage.database", "."),
    ("read_only", "register.checkpoint_dir", "register-checkpoints"),
    ("read_only", "delivery.maildir", "delivered/new"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "key", "path"), BROKEN_DEV, ids=[f"{h}-{k}" for h, k, _ in BROKEN_DEV]
)
def test_each_path_of_the_development_example_broken_stops_both_alike(
    how: str, key: str, path: str
) -> None:
    with temp_root() as root:
        dev = root / "dev"
        dev.mkdir(mode=0o700)
        config = dev / "gateway.toml"
        shutil.copy(EXAMPLES / "development.toml", config)
        USER.own(dev)
        done = USER.run([*gateway_command(), "init", "--config", str(config)])
        assert done.returncode == 0, done.stderr
        assert check(config, "check-config") == (0, f"{config}: ok\n", "")
        target = dev / path
        if how == "remove":
            target.unlink()
        else:
            USER.read_only(target)
        lines = {}
        for command in ("check-config", "serve"):
            code, out, err = check(config, command)
            assert (command, code, out) == (command, 1, "")
            [line] = err.splitlines()
            prefix = f"c4f-gateway {command}: config error: "
            assert line.startswith(f"{prefix}{config}: {key}: "), line
            lines[command] = line.removeprefix(prefix)
        assert lines["check-config"] == lines["serve"]


@pytest.mark.parametrize("example", ["office365.toml", "smarthost.toml"])
def test_production_examples_name_every_path_and_pass_check_config(example: str) -> None:
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    for key in (
        "cert_file",
        "key_file",
        "database",
        "spool_key_file",
        "mac_key_file",
        "checkpoint_dir",
        "credentials_file",
        "providers_file",
        "file",
    ):
        assert re.search(rf'^{key} = "/(etc|var/lib)/c4f-gateway/', text, re.MULTILINE), key
    with temp_root() as root:
        config = production_setup(root, example)
        assert check(config, "check-config") == (0, f"{config}: ok\n", "")
        settings = load(config)
        state = Path(f"{root}{STATE}")
        # Everything the gateway writes is in the state folder, everything else in /etc.
        assert settings.storage.database.parent == state
        assert settings.register.checkpoint_dir.parent == state


def test_development_example_is_what_init_writes(tmp_path: Path) -> None:
    done = run_cli("init", "--dir", tmp_path / "init")
    assert done.returncode == 0, done.stderr
    example = tmp_path / "example" / "gateway.toml"
    example.parent.mkdir()
    shutil.copy(EXAMPLES / "development.toml", example)
    made = load(tmp_path / "init" / "gateway.toml")
    assert load(example) == _moved(made, (tmp_path / "init").resolve(), example.parent.resolve())
    done = run_cli("init", "--config", example)
    assert done.returncode == 0, done.stderr
    assert run_cli("check-config", "--config", example).returncode == 0


def _moved(value: object, old: Path, new: Path) -> object:
    """``value`` with paths under ``old`` moved under ``new`` (sections recursively)."""
    if isinstance(value, Path):
        return new / value.relative_to(old) if value.is_relative_to(old) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _moved(getattr(value, f.name), old, new) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    return value


SANDBOX = (
    "User",
    "Group",
    "StateDirectory",
    "StateDirectoryMode",
    "ReadWritePaths",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "UMask",
    "NoNewPrivileges",
    "RestrictSUIDSGID",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "ProtectProc",
    "ProcSubset",
    "RestrictNamespaces",
    "RestrictRealtime",
    "LockPersonality",
    "RestrictAddressFamilies",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "ExecStartPre",
)


def test_units_share_the_sandbox_and_allow_writes_where_the_examples_write() -> None:
    gateway = unit_lines(DEPLOY / "c4f-gateway.service")
    web = unit_lines(DEPLOY / "c4f-gateway-web.service")
    for key in SANDBOX:
        assert gateway.get(key) == web.get(key), key
        assert gateway.get(key), key
    config = f"--config {ETC}/gateway.toml"
    assert gateway["ExecStartPre"] == [
        f"/opt/c4f-gateway/venv/bin/c4f-gateway check-config {config}"
    ]
    assert gateway["ExecStart"] == [f"/opt/c4f-gateway/venv/bin/c4f-gateway serve {config}"]
    assert web["ExecStart"] == [f"/opt/c4f-gateway/venv/bin/c4f-gateway web {config}"]
    assert gateway["ReadWritePaths"] == [STATE]
    assert web["CapabilityBoundingSet"] == [""]  # the console binds no privileged port
    for example in ("office365.toml", "smarthost.toml"):
        text = (EXAMPLES / example).read_text(encoding="utf-8")
        for key in ("database", "checkpoint_dir"):
            [value] = re.findall(rf'^{key} = "([^"]+)"', text, re.MULTILINE)
            assert value.startswith(f"{STATE}/"), (example, key)


def test_init_config_twice_keeps_every_key_and_says_so(tmp_path: Path) -> None:
    """Replacing a key would make queued mail and register entries unreadable."""
    config = tmp_path / "gateway.toml"
    shutil.copy(EXAMPLES / "development.toml", config)
    first = run_cli("init", "--config", config)
    assert first.returncode == 0, first.stderr
    assert "Wrote a self-signed certificate for localhost" in first.stdout
    keys = ["keys/spool.key", "keys/register.key", "keys/register-mac.key", "tls/key.pem"]
    before = {k: (tmp_path / k).read_bytes() for k in keys}
    again = run_cli("init", "--config", config)
    assert again.returncode == 0, again.stderr
    assert {k: (tmp_path / k).read_bytes() for k in keys} == before
    assert again.stdout.count("Kept the existing ") == 4
    assert "self-signed" not in again.stdout
    missing = run_cli("init", "--config", tmp_path / "nowhere.toml")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert (
        missing.stderr
        == f"c4f-gateway init: error: {tmp_path / 'nowhere.toml'}: no such config file\n"
    )
