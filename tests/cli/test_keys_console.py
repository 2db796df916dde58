"""Key rotation while the review console (``c4f-gateway web``) runs in its own process.

An admin enrolled in TOTP (the secret sealed with the spool key) signs in over HTTPS and
reads the contact list (sealed with the register key). Both keys are rotated, everything
re-sealed and the old keys retired by the CLI in other processes; the same console, never
restarted, still shows the contacts to the open session and signs the admin in again with
the next TOTP code.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pyotp
import pytest
from support.pki import TestCA
from support.subprocess_gateway import run_cli
from support.web import ADMIN, PASSWORD, add_account, field_value, prepare

from gateway.crypto import Keyring, key_id_of
from gateway.store import Store
from gateway.web.totp import TotpStore

pytestmark = pytest.mark.slow


def settle(path: Path) -> None:
    """Date the key file back past ``keys retire``'s settling time (60 s)."""
    then = time.time() - 120
    os.utime(path, (then, then))


def sign_in(client: httpx.Client, secret: str, at: float) -> None:
    form = client.get("/signin")
    reply = client.post(
        "/signin",
        data={
            "signin_token": field_value(form.text, "signin_token"),
            "login": ADMIN,
            "password": PASSWORD,
        },
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/signin/code"
    page = client.get("/signin/code")
    reply = client.post(
        "/signin/code",
        data={"csrf": field_value(page.text, "csrf"), "code": pyotp.TOTP(secret).at(at)},
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/register", reply.text


def test_console_keeps_working_through_a_rotation(tmp_path: Path, ca: TestCA) -> None:
    settings = prepare(tmp_path / "gw", ca, {"web": {"tls": True}})
    config = settings.source
    store = Store(settings.storage.database)
    add_account(store, ADMIN, "admin")
    secret = TotpStore(store, Keyring.load(settings.storage.spool_key_file)).enrol(ADMIN)
    store.close()
    added = run_cli(
        "contacts", "add", "sam@school.example", "--name", "Sam Smith", "--org", "School",
        "--approved-by", "Jo Manager", "--verified", "phoned back", "--no-dns",
        "--by", "admin", "--config", config,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    log = tmp_path / "web.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "web", "--config", str(config),
             "--listen", "127.0.0.1:0"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"review console on (https://\S+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        verify = ssl.create_default_context(cafile=str(ca.ca_file))
        with httpx.Client(base_url=found.group(1), verify=verify, timeout=10) as client:
            sign_in(client, secret, time.time() - 30)
            page = client.get("/contacts")
            assert page.status_code == 200 and "Sam Smith" in page.text

            for which, path in (
                ("spool", settings.storage.spool_key_file),
                ("register", settings.source.parent / "keys" / "register.key"),
            ):
                old = Keyring.load(path).current_id
                assert run_cli("keys", "rotate", which, "--config", config).returncode == 0
                done = run_cli("keys", "reseal", which, "--config", config)
                assert done.returncode == 0, done.stdout + done.stderr
                settle(path)
                done = run_cli("keys", "retire", old, "--config", config)
                assert done.returncode == 0, done.stderr
                assert old not in Keyring.load(path).ids

            check = Store(settings.storage.database)
            try:
                (row,) = check.query("SELECT secret FROM web_totp")
                current = Keyring.load(settings.storage.spool_key_file).current_id
                assert key_id_of(row["secret"]) == current
            finally:
                check.close()
            page = client.get("/contacts")  # the same session, in the same process
            assert page.status_code == 200 and "Sam Smith" in page.text
            client.cookies.clear()
            sign_in(client, secret, time.time())  # the TOTP secret, re-sealed, still opens
            assert client.get("/contacts").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    output = log.read_text()
    assert output.count("key_file_reloaded") >= 2
    assert "Sam Smith" not in output and secret not in output
