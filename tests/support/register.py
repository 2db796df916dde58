"""Shared builders for the register tests (real SQLite files, real keys, real bytes).

Imported by the ``test_register*`` modules; holds no tests of its own.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.crypto import Keyring
from gateway.events import Accepted, RefusedEvent
from gateway.register.codec import MacKey
from gateway.register.ledger import Register
from gateway.settings import load
from gateway.settings.register import register_settings
from gateway.store import Store

T0 = 1_700_000_000.0  # 2023-11-14, a fixed start for injected clocks
DAY = 86400.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_keys(tmp_path: Path) -> tuple[Path, Path]:
    key_file, mac_file = tmp_path / "keys" / "register.key", tmp_path / "keys" / "register-mac.key"
    if not key_file.exists():
        Keyring.create(key_file)
        MacKey.create(mac_file)
    return key_file, mac_file


def make_register(
    tmp_path: Path, clock: Clock | None = None, store: Store | None = None, **kw: Any
) -> Register:
    key_file, mac_file = make_keys(tmp_path)
    return Register(
        store or Store(tmp_path / "gateway.db"),
        Keyring.load(key_file),
        mac_file,
        tmp_path / "checkpoints",
        clock=clock or Clock(),
        **kw,
    )


def message(
    subject: str = "Contact report",
    attachment: bytes = b"%PDF-1.4 report body\n",
    name: str = "report.pdf",
) -> bytes:
    body = (
        "From: alice@c4f.example\r\n"
        "To: j.smith@cafcass.example\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <m1@c4f.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Please find the report attached.\r\n"
        "--b1\r\n"
        "Content-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode()
    return body + base64.encodebytes(attachment).replace(b"\n", b"\r\n") + b"--b1--\r\n"


def accepted(
    queue_id: str = "Q1",
    at: float = T0,
    *,
    rcpts: tuple[str, ...] = ("j.smith@cafcass.example",),
    content: bytes | None = None,
    disclosure: dict[str, Any] | None = None,
    recipients: dict[str, Any] | None = None,
    staff: str = "alice@c4f.example",
) -> Accepted:
    content = content if content is not None else message()
    notes: dict[str, Any] = {}
    if disclosure is not None:
        notes["disclosure"] = disclosure
    if recipients is not None:
        notes["recipients"] = recipients
    return Accepted(
        queue_id=queue_id,
        received_at=at,
        staff=staff,
        peer="192.0.2.10",
        mail_from=staff,
        rcpt_tos=rcpts,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        annotations=notes,
    )


def refused(queue_id: str = "Q9", at: float = T0, address: str = "x@fax.example") -> RefusedEvent:
    return RefusedEvent(
        queue_id=queue_id,
        at=at,
        staff="alice@c4f.example",
        peer="192.0.2.10",
        phase="rcpt",
        mail_from="alice@c4f.example",
        rcpt_tos=(),
        address=address,
        reply="550 5.7.1 Fax routes are not allowed [ref R-1A2B]",
        reference="R-1A2B",
    )


def record(reg: Register, event: Accepted | RefusedEvent) -> None:
    with reg.store.transaction() as conn:
        if isinstance(event, Accepted):
            reg.accepted(conn, event)
        else:
            reg.refused(conn, event)


def fill(reg: Register, n: int, start: float = T0) -> None:
    """n accepted messages, one a minute."""
    for i in range(n):
        record(reg, accepted(f"Q{i + 1}", start + 60 * i))


def raw(tmp_path: Path) -> sqlite3.Connection:
    """A second, independent connection: how an attacker with the file would edit it."""
    conn = sqlite3.connect(tmp_path / "gateway.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def file_bytes(tmp_path: Path) -> bytes:
    """The database and its write-ahead log, as they are on disk."""
    out = b""
    for suffix in ("", "-wal"):
        p = tmp_path / f"gateway.db{suffix}"
        if p.exists():
            out += p.read_bytes()
    return out


def register_config(folder: Path) -> Path:
    """The smallest gateway.toml (an upstream host; every path under ``folder``)."""
    path = folder / "gateway.toml"
    path.write_text('[upstream]\nhost = "smtp.example"\n', encoding="utf-8")
    return path


def open_register(config: Path, clock: Callable[[], float] = time.time) -> Register:
    """The register of the gateway ``config`` describes, its keys created first."""
    settings = load(config)
    rs = register_settings(settings)
    Register.create_keys(rs)
    return Register.from_settings(Store(settings.storage.database), rs, clock=clock)
