"""A real gateway for tests: config file, keys, test-CA certificate, SQLite file, port 0."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.crypto import Keyring
from gateway.directory.passwords import hash_password
from gateway.directory.staff import StaffDirectory
from gateway.events import Recorder
from gateway.register.ledger import Register
from gateway.server import Gateway
from gateway.settings import Settings, load
from gateway.settings.register import RegisterSettings
from support.pki import TestCA

PASSWORD = "staff-password-for-tests"
# Cheaper scrypt for test accounts only: the code path is the same, the cost parameter is
# stored in the hash itself.
_CHEAP_HASH = hash_password(PASSWORD, n=2**10)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str | Path):
        return json.dumps(str(v))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_config(path: Path, sections: dict[str, Any]) -> Path:
    """Top-level scalars first, then one [table] per dict (nested dicts become [a.b])."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []

    def walk(prefix: str, table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if prefix:
            tables.append((prefix, scalars))
        else:
            lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for k, v in table.items():
            if isinstance(v, dict):
                walk(f"{prefix}.{k}" if prefix else k, v)

    walk("", sections)
    for name, scalars in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def base_config(folder: Path, ca: TestCA, upstream_port: int | None) -> dict[str, Any]:
    cert = ca.issue("localhost", sans=["localhost", "127.0.0.1"])
    keyfile = folder / "keys" / "spool.key"
    if not keyfile.exists():
        Keyring.create(keyfile)
    Register.create_keys(RegisterSettings().resolved(folder))
    cfg: dict[str, Any] = {
        "hostname": "gateway.test",
        # One process: a kill -9 or SIGSTOP of `serve` is then the crash under test. The
        # worker tests (tests/queue/test_workers.py) ask for several.
        "server": {"workers": 1},
        "organisation": {"domains": ["c4f.example"]},
        "listen": {"starttls": ["127.0.0.1:0"], "implicit_tls": ["127.0.0.1:0"]},
        "tls": {"cert_file": str(cert.cert), "key_file": str(cert.key)},
        "storage": {"database": "gateway.db", "spool_key_file": str(keyfile)},
        # Test accounts are hashed at this cost (_CHEAP_HASH), so no login re-hashes them.
        "auth": {"password_hash_cost": 10},
        "delivery": {"retry_initial": 0.2, "retry_max": 1.0, "poll_interval": 0.05},
        # Tests run the filters they are about; serve refuses a partial chain without this.
        "pipeline": {"filters": ["sender"], "allow_partial_pipeline": True},
    }
    if upstream_port is None:
        cfg["delivery"]["transport"] = "maildir"
    else:
        cfg["delivery"]["transport"] = "smtp"
        cfg["upstream"] = {
            "host": "localhost",
            "port": upstream_port,
            "ca_file": str(ca.ca_file),
            "timeout": 10.0,
        }
    return cfg


@dataclass
class RunningGateway:
    gateway: Gateway
    settings: Settings
    ca: TestCA
    config_path: Path
    staff: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.gateway.port("starttls")

    @property
    def implicit_port(self) -> int:
        return self.gateway.port("implicit_tls")

    def client_tls(self) -> ssl.SSLContext:
        """What a staff mail client uses: verifies the gateway against the test CA."""
        ctx = ssl.create_default_context(cafile=str(self.ca.ca_file))
        return ctx

    def add_staff(
        self,
        login: str,
        aliases: Sequence[str] = (),
        *,
        role: str = "staff",
        managers: Sequence[str] = (),
    ) -> str:
        d = StaffDirectory(self.gateway.store)
        with self.gateway.store.transaction() as conn:
            conn.execute(
                "INSERT INTO staff (login, password_hash, aliases, created, role, managers)"
                " VALUES (?, ?, ?, 0, ?, ?)",
                (
                    login.lower(),
                    _CHEAP_HASH,
                    json.dumps([a.lower() for a in aliases]),
                    role,
                    json.dumps([m.lower() for m in managers]),
                ),
            )
        assert d.get(login) is not None
        self.staff.append(login)
        return PASSWORD

    async def client(self, login: str | None = None) -> aiosmtplib.SMTP:
        """A connected aiosmtplib client over STARTTLS, logged in as ``login`` if given."""
        c = aiosmtplib.SMTP(
            hostname="localhost",
            port=self.port,
            start_tls=True,
            tls_context=self.client_tls(),
            timeout=10,
        )
        await c.connect()
        if login:
            await c.login(login, PASSWORD)
        return c

    async def send(
        self,
        login: str,
        rcpt_tos: Sequence[str],
        content: bytes | EmailMessage,
        mail_from: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        if isinstance(content, EmailMessage):
            content = content.as_bytes(policy=SMTP_POLICY)
        c = await self.client(login)
        try:
            errors, reply = await c.sendmail(mail_from or login, list(rcpt_tos), content)
        finally:
            c.close()
        return errors, reply

    async def wait_maildir(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """The delivered files once there are ``count`` of them (Maildir transport)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.maildir()) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages delivered")
            await asyncio.sleep(0.02)
        return found

    def maildir(self) -> list[bytes]:
        new = self.settings.delivery.maildir / "new"
        if not new.exists():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir())]


def message(
    sender: str,
    to: Sequence[str],
    body: str = "Hello.\n",
    subject: str = "Visit notes",
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg


async def start_gateway(
    folder: Path,
    ca: TestCA,
    *,
    upstream_port: int | None = None,
    config: dict[str, Any] | None = None,
    recorder: Recorder | None = None,
    deliver: bool = True,
) -> RunningGateway:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = merge(base_config(folder, ca, upstream_port), config or {})
    path = write_config(folder / "gateway.toml", cfg)
    settings = load(path)
    gw = Gateway(settings, recorder=recorder)
    await gw.start(deliver=deliver)
    return RunningGateway(gw, settings, ca, path)


def staff_commands_config(folder: Path) -> Path:
    """A config for the staff and contacts commands: the database and the register's keys
    (changes go into its admin trail), no spool key or certificates; cheap password hashes
    (test_password_cost.py runs the default cost)."""
    Register.create_keys(RegisterSettings().resolved(folder))
    return write_config(
        folder / "gateway.toml",
        {
            "storage": {"database": "gateway.db"},
            "delivery": {"transport": "maildir"},
            "auth": {"password_hash_cost": 10},
        },
    )
