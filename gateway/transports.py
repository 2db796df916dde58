"""How a message leaves: the smarthost over verified TLS, or a local folder for dev.

A transport returns one :class:`AttemptResult` per attempt: per recipient a reply code and
text, plus the evidence of how the message left. A failure before any recipient was
answered (no TLS, bad certificate, connection lost) raises :class:`TempFailure`: the
caller defers the whole message. Nothing is ever sent in clear (TLS-1, TLS-2, TLS-3).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from gateway.errors import ConfigError, TempFailure
from gateway.events import Evidence
from gateway.settings import Upstream
from gateway.tls import client_context, peer_evidence

log = structlog.get_logger("gateway.delivery")


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".")[:3] if p.isdigit())


# TLS-5: 5.1.2 fixed GHSA-vxj7-4xrp-5vr4 (responses buffered before the TLS handshake were
# trusted); older releases must not run this gateway.
if _version_tuple(aiosmtplib.__version__) < (5, 1, 2):  # pragma: no cover
    raise ImportError("aiosmtplib >= 5.1.2 is required (GHSA-vxj7-4xrp-5vr4)")


@dataclass(frozen=True)
class AttemptResult:
    replies: dict[str, tuple[int, str]]  # recipient -> (code, text)
    final_reply: str  # the reply to the end of data, or the reason nothing was sent
    evidence: Evidence = field(default_factory=Evidence)


class Transport(Protocol):
    async def send(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> AttemptResult: ...


class SmtpTransport:
    def __init__(self, upstream: Upstream, hostname: str) -> None:
        self.upstream = upstream
        self.helo = upstream.helo_name or hostname
        self.context = client_context(upstream.ca_file)
        self.credentials = _read_credentials(upstream.credentials_file)

    async def send(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> AttemptResult:
        up = self.upstream
        client = aiosmtplib.SMTP(
            hostname=up.host,
            port=up.port,
            local_hostname=self.helo,
            timeout=up.timeout,
            tls_context=self.context,
            # Never start_tls=None: that silently sends in clear when STARTTLS is missing.
            use_tls=up.tls == "implicit",
            start_tls=up.tls == "starttls",
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPException as exc:
            raise TempFailure(
                f"upstream {up.host}: TLS or connection failed: {exc}",
                enhanced="4.7.5" if _is_cert_error(exc) else "4.4.2",
            ) from exc
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise TempFailure(
                f"upstream {up.host}: connection failed: {exc}", enhanced="4.4.1"
            ) from exc
        try:
            ssl_object = client.transport.get_extra_info("ssl_object") if client.transport else None
            if ssl_object is None:  # defence in depth: the options above already require TLS
                raise TempFailure(
                    f"upstream {up.host}: TLS is required, but was not established",
                    enhanced="4.7.4",
                )
            version, cipher, fingerprint = peer_evidence(ssl_object)
            evidence = Evidence(
                host=f"{up.host}:{up.port}",
                tls_version=version,
                cipher=cipher,
                cert_sha256=fingerprint,
            )
            if self.credentials:
                await client.login(*self.credentials)
            try:
                errors, message = await client.sendmail(mail_from, rcpt_tos, content)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                replies = {r.recipient: (r.code, r.message) for r in exc.recipients}
                return AttemptResult(replies, "all recipients refused", evidence)
            except aiosmtplib.SMTPResponseException as exc:
                code = exc.code
                return AttemptResult(
                    {r: (code, exc.message) for r in rcpt_tos}, f"{code} {exc.message}", evidence
                )
            replies = {r: (250, message) for r in rcpt_tos}
            for rcpt, resp in errors.items():
                replies[rcpt] = (resp.code, resp.message)
            return AttemptResult(replies, f"250 {message}", evidence)
        except aiosmtplib.SMTPException as exc:
            raise TempFailure(f"upstream {up.host}: {exc}", enhanced="4.4.2") from exc
        finally:
            client.close()


def _is_cert_error(exc: BaseException) -> bool:
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        e = e.__cause__ or e.__context__
    return False


def _read_credentials(path: Path | None) -> tuple[str, str] | None:
    if path is None:
        env_user, env_pass = (
            os.environ.get("C4F_UPSTREAM_USER"),
            os.environ.get("C4F_UPSTREAM_PASSWORD"),
        )
        return (env_user, env_pass) if env_user and env_pass else None
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: credentials file must not be readable by group or others")
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read credentials: {exc.strerror}") from exc
    if len(lines) < 2 or not lines[0] or not lines[1]:
        raise ConfigError(f"{path}: expected two lines: user, then password")
    return lines[0], lines[1]


class MaildirTransport:
    """Dev and tests: each delivered message becomes one file in ``DIR/new`` (Maildir)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    async def send(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> AttemptResult:
        name = f"{time.time_ns()}.{os.getpid()}.{os.urandom(4).hex()}.{socket.gethostname()}"
        tmp = self.path / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            header = f"Return-Path: <{mail_from}>\r\nDelivered-To: {', '.join(rcpt_tos)}\r\n"
            f.write(header.encode("utf-8") + content)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path / "new" / name)
        dfd = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        reply = f"delivered to maildir as {name}"
        return AttemptResult(
            {r: (250, reply) for r in rcpt_tos},
            f"250 {reply}",
            Evidence(host=f"maildir:{self.path}"),
        )
