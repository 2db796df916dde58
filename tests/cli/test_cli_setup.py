"""``init``, ``check-config``, ``serve`` and ``--help``, run as the real command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import shutil
import socket
import ssl
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiosmtplib
import pytest
from support.deploy import without_review_due
from support.harness import message
from support.subprocess_gateway import GatewayProcess, run_cli

from gateway.cli import build_parser, main
from gateway.cli.init import demo_password
from gateway.queue.bodies import bodies_folder
from gateway.settings import load

ALICE = "alice@c4f.example"
PASSWORD = "a long password for alice"


def init(folder: Path, *extra: str) -> Path:
    done = run_cli("init", "--dir", folder, "--port", "0", "--implicit-port", "0", *extra)
    assert done.returncode == 0, done.stderr
    return folder / "gateway.toml"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``init`` for the module; tests take copies (each command costs ~0.6 s)."""
    return init(tmp_path_factory.mktemp("pristine") / "dev").parent


@pytest.fixture
def setup_copy(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of an ``init`` folder; returns its config path."""
    return Path(shutil.copytree(pristine, tmp_path / "dev")) / "gateway.toml"


async def test_init_writes_a_setup_that_checks_serves_and_delivers(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    config = init(folder)
    for secret in (
        "keys/spool.key",
        "keys/register.key",
        "keys/register-mac.key",
        "tls/key.pem",
        "gateway.db",
    ):
        assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600, secret
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    checked = run_cli("check-config", "--config", config)
    assert (checked.returncode, checked.stdout.strip()) == (0, f"{config}: ok")
    assert checked.stderr == ""  # init runs every policy filter: no warning
    added = run_cli("staff", "add", ALICE, "--password-stdin", "--config", config, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr

    gw = await GatewayProcess(config).start()
    try:
        # A mail client that trusts the dev certificate init wrote, and checks its name.
        tls = ssl.create_default_context(cafile=str(folder / "tls" / "cert.pem"))
        client = aiosmtplib.SMTP(
            hostname="localhost", port=gw.port, start_tls=True, tls_context=tls, timeout=10
        )
        await client.connect()
        await client.login(ALICE, PASSWORD)
        _errors, reply = await client.send_message(
            message(ALICE, ["bob@c4f.example"], body="INIT-SMOKE\n")
        )
        client.close()
        assert reply.startswith("2.0.0 Queued as ")
        new = folder / "delivered" / "new"
        for _ in range(200):
            if new.exists() and any(new.iterdir()):
                break
            await asyncio.sleep(0.05)
        [delivered] = list(new.iterdir())
        assert b"INIT-SMOKE" in delivered.read_bytes()
    finally:
        assert await gw.stop() == 0  # SIGTERM: a clean stop


def test_init_refuses_to_overwrite_an_existing_setup(setup_copy: Path) -> None:
    config = setup_copy
    before = config.read_bytes()
    again = run_cli("init", "--dir", config.parent)
    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert config.read_bytes() == before


def test_init_again_after_the_config_is_removed_keeps_every_key(setup_copy: Path) -> None:
    """Replacing a key would make queued mail and register entries unreadable."""
    folder = setup_copy.parent
    keys = ["keys/spool.key", "keys/register.key", "keys/register-mac.key", "tls/key.pem"]
    before = {k: (folder / k).read_bytes() for k in keys}
    setup_copy.unlink()
    again = run_cli("init", "--dir", folder)
    assert again.returncode == 0, again.stderr
    assert {k: (folder / k).read_bytes() for k in keys} == before
    assert again.stdout.count("Kept the existing ") == 4
    assert run_cli("check-config", "--config", setup_copy).returncode == 0


def test_init_demo_prints_an_account_that_exists(tmp_path: Path) -> None:
    done = run_cli("init", "--dir", tmp_path / "dev", "--demo", "--domain", "centre.example")
    assert done.returncode == 0, done.stderr
    assert "Demo staff account: demo@centre.example" in done.stdout
    assert "swaks --server 127.0.0.1:1587 --tls" in done.stdout
    listed = run_cli("staff", "list", "--config", tmp_path / "dev" / "gateway.toml")
    assert "demo@centre.example" in listed.stdout


def test_the_demo_password_never_reads_as_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """swaks --auth-password '-x...' (the command init prints) stops: "Unknown option"."""
    drawn = iter(["-RSMnleZ4pv-qpsw", "--abc", "Kq-9x_ab-cd1"])
    monkeypatch.setattr("gateway.cli.init.secrets.token_urlsafe", lambda n: next(drawn))
    assert demo_password() == "Kq-9x_ab-cd1"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[tls]", "bogus = 1\n\n[tls]", "gateway.toml: listen.bogus: unknown key"),
        (
            'maildir = "delivered"',
            "maildir = 3",
            "gateway.toml: delivery.maildir: expected a path",
        ),
        (
            'transport = "maildir"',
            'transport = "fax"',
            "gateway.toml: delivery.transport: must be one of 'smtp', 'maildir', not 'fax'",
        ),
        (
            '"keys/spool.key"',
            '"keys/missing.key"',
            "gateway.toml: storage.spool_key_file: ",
        ),
        (
            '"disclaimer"]',
            '"disclaimer", "nope"]',
            "gateway.toml: pipeline.filters: no filter named 'nope'",
        ),
    ],
    ids=["unknown_key", "bad_type", "bad_value", "missing_key_file", "unknown_filter"],
)
def test_check_config_names_file_key_and_reason(
    setup_copy: Path, old: str, new: str, expected: str
) -> None:
    config = setup_copy
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    checked = run_cli("check-config", "--config", "gateway.toml", cwd=config.parent)
    assert checked.returncode == 1
    assert checked.stdout == ""
    [line] = checked.stderr.splitlines()
    assert expected in line
    if "missing.key" in new:
        assert line.endswith("keys/missing.key: cannot read key file: No such file or directory")


@pytest.mark.parametrize(
    ("chain", "missing", "means"),
    [
        (
            '["sender", "fax_route", "contacts", "disclosure", "disclaimer"]',
            "media, approval",
            [
                "photos and videos leave without a manager's approval",
                "messages are not held for approval",
            ],
        ),
        (
            '["sender"]',
            "fax_route, contacts, disclosure, media, approval, disclaimer",
            [
                "fax-to-email addresses are not refused",
                "recipients are not checked against the approved contacts",
                "consent and safeguarding tags are not read",
                "messages are not held for approval",
                "the mandatory confidentiality notice is not added",
            ],
        ),
    ],
    ids=["no_approval", "sender_only"],
)
def test_a_missing_policy_filter_stops_check_config_and_serve(
    setup_copy: Path, chain: str, missing: str, means: list[str]
) -> None:
    """Without allow_partial_pipeline a partial chain is an error, in both commands."""
    config = setup_copy
    text = config.read_text()
    full = '["sender", "fax_route", "contacts", "disclosure", "media", "approval", "disclaimer"]'
    assert full in text
    config.write_text(text.replace(full, chain))
    for command in ("check-config", "serve"):
        done = run_cli(command, "--config", config)
        assert (command, done.returncode, done.stdout) == (command, 1, "")
        [line] = done.stderr.splitlines()
        assert line.startswith(f"c4f-gateway {command}: config error: {config}: pipeline.filters: ")
        assert f"policy filter(s) not in the pipeline: {missing};" in line
        assert line.endswith(
            "or set allow_partial_pipeline = true in [pipeline] (development only)"
        )
        for meaning in means:
            assert meaning in line


@pytest.mark.parametrize(
    ("chain", "missing"),
    [
        ('["sender", "fax_route", "contacts", "disclosure", "disclaimer"]', "media, approval"),
        ('["sender"]', "fax_route, contacts, disclosure, media, approval, disclaimer"),
    ],
    ids=["no_approval", "sender_only"],
)
def test_allow_partial_pipeline_turns_the_error_into_a_warning(
    setup_copy: Path, chain: str, missing: str
) -> None:
    """Development and tests run fewer filters on purpose, when the config says so."""
    config = setup_copy
    text = config.read_text()
    full = '["sender", "fax_route", "contacts", "disclosure", "media", "approval", "disclaimer"]'
    assert f"filters = {full}" in text
    config.write_text(
        text.replace(f"filters = {full}", f"filters = {chain}\nallow_partial_pipeline = true")
    )
    checked = run_cli("check-config", "--config", config)
    assert (checked.returncode, checked.stdout.strip()) == (0, f"{config}: ok")
    [line] = without_review_due(checked.stderr).splitlines()
    assert line.startswith(f"WARNING: {config}: pipeline.filters: ")
    assert f"policy filter(s) not in the pipeline: {missing};" in line


def test_check_config_refuses_a_key_file_others_can_read(setup_copy: Path) -> None:
    config = setup_copy
    (config.parent / "keys" / "spool.key").chmod(0o644)
    checked = run_cli("check-config", "--config", config)
    assert checked.returncode == 1
    assert "storage.spool_key_file: " in checked.stderr
    assert "must not be readable by group or others" in checked.stderr


def test_commands_without_a_config_file_say_how_to_make_one(tmp_path: Path) -> None:
    done = run_cli("queue", "list", "--config", tmp_path / "nowhere.toml")
    assert done.returncode == 2
    assert "no such config file (create one with 'c4f-gateway init')" in done.stderr


def command_paths(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += command_paths(sub, (*path, name))
    return found


def test_help_of_the_command_and_each_subcommand_runs(tmp_path: Path) -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    commands = [p for p in command_paths(build_parser()) if len(p) == 1]
    assert {("init",), ("serve",), ("check-config",), ("staff",), ("queue",)} <= set(commands)
    with ThreadPoolExecutor(4) as pool:
        runs = dict(zip(commands, pool.map(lambda c: run_cli(*c, "--help"), commands), strict=True))
    for (name,), done in runs.items():
        assert name in top.stdout
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith(f"usage: c4f-gateway {name}")


def test_help_of_every_action_runs() -> None:
    # The same parser in-process: one subprocess per action would cost ~0.5 s each.
    for path in command_paths(build_parser()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code == 0, path
        assert out.getvalue().startswith("usage: c4f-gateway"), path


def test_python_dash_m_gateway_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage: c4f-gateway")


def test_serve_on_a_port_in_use_says_so_in_one_line(setup_copy: Path) -> None:
    """A second gateway (or anything) on the port: one line naming the setting, exit 1,
    not a traceback."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        text = setup_copy.read_text(encoding="utf-8")
        setup_copy.write_text(text.replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"', 1))
        done = run_cli("serve", "--config", setup_copy)
    finally:
        taken.close()
    assert done.returncode == 1, done.stderr
    assert f"listen.starttls: cannot listen on 127.0.0.1:{port}: " in done.stderr
    assert "(is another gateway running?)" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_config_refuses_when_the_large_bodies_folder_cannot_be_written(
    setup_copy: Path,
) -> None:
    """serve keeps large messages beside the database: a file in that folder's place (or
    a folder it cannot write) stops check-config and serve, not the first large message."""
    config = setup_copy
    folder = bodies_folder(load(config).storage.database)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.is_dir():
        folder.rmdir()
    folder.write_bytes(b"")
    for command in ("check-config", "serve"):
        done = run_cli(command, "--config", config)
        assert (command, done.returncode, done.stderr) == (
            command,
            1,
            f"c4f-gateway {command}: config error: {config}: storage.database: "
            f"{folder}: not a folder\n",
        )
