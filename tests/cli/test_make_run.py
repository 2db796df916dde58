"""``make run`` run again reuses the dev setup and says how to set the demo password
(shown once, when ``init --demo`` made the account, and kept nowhere)."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.subprocess_gateway import run_cli

REPO = Path(__file__).resolve().parents[2]
DEMO = "demo@c4f.example"
NEW_PASSWORD = "a new demo pass phrase 7"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _lines_until(proc: subprocess.Popen[str], last: str, timeout: float = 60) -> list[str]:
    """stdout lines up to the first containing ``last`` (the gateway then keeps serving)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not lines or last not in lines[-1]:
        assert sel.select(deadline - time.monotonic()), f"no {last!r} in {lines}"
        line = proc.stdout.readline()
        assert line, f"make ended before {last!r}: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def test_make_run_again_says_how_to_set_the_demo_password(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    made = run_cli("init", "--dir", dev, "--demo", "--port", "0", "--implicit-port", "0")
    assert made.returncode == 0 and f"Demo staff account: {DEMO}" in made.stdout
    # -o: never reinstall the shared virtualenv from a test, however new pyproject.toml is.
    proc = subprocess.Popen(
        ["make", "-s", "-o", ".venv/.installed", "run", f"DEV={dev}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = _lines_until(proc, "staff passwd")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()  # else a ResourceWarning at some later test's collection
    command = f".venv/bin/c4f-gateway staff passwd {DEMO} --config {dev}/gateway.toml"
    assert lines == [
        f"Reusing the dev setup in {dev}/. The demo account's password was shown when it",
        "was created; to set a new one:",
        f"  {command}",
    ]
    # The hint is a command that works, from where `make run` was typed.
    done = subprocess.run(
        [*command.split(), "--password-stdin"],
        cwd=REPO,
        input=NEW_PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.splitlines()[0]) == (
        0,
        f"password changed for {DEMO}; signed out of the console everywhere",
    ), done.stderr
