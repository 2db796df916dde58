"""The smarthost transport: verified TLS first, then AUTH, then SMTP transactions.

Nothing of the envelope or the message is sent before the upstream's certificate is
verified (TLS-1, TLS-2, TLS-3); a failure before that defers the whole message, a failure
after it is a result with the evidence of how far it got. A connection that carried a
message cleanly is kept for the next ones (:mod:`gateway.queue.smtp_pool`), and a new
connection resumes the TLS session of the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl
from pathlib import Path

import aiosmtplib

from gateway.crypto import read_secret_file
from gateway.errors import ConfigError, TempFailure
from gateway.events import Evidence
from gateway.mail.content import Content
from gateway.queue.smtp_exchange import transaction
from gateway.queue.smtp_pool import ConnectionPool, Kept
from gateway.queue.transports import AttemptResult, not_sent
from gateway.settings import Upstream
from gateway.tls import client_context, peer_evidence

_VERSION = re.compile(r"(\d+(?:\.\d+)*)(.*)")


def version_at_least(version: str, minimum: tuple[int, ...]) -> bool:
    """True when ``version`` (PEP 440 text) is a release at or above ``minimum``.

    A pre-release ("5.1.2rc1", "5.1.2.dev3") counts as below its release: it may not
    carry the fix yet. Text we cannot read counts as too old (fail closed).
    """
    m = _VERSION.fullmatch(version.strip())
    if m is None:
        return False
    release = _trim(tuple(int(p) for p in m[1].split(".")))
    wanted = _trim(minimum)
    if release != wanted:
        return release > wanted
    suffix = m[2].lower().lstrip(".-_")
    return not suffix or suffix.startswith(("post", "+"))


def _trim(release: tuple[int, ...]) -> tuple[int, ...]:
    while release and release[-1] == 0:
        release = release[:-1]
    return release


# TLS-5: 5.1.2 fixed GHSA-vxj7-4xrp-5vr4 (responses buffered before the TLS handshake were
# trusted); older releases must not run this gateway.
MIN_AIOSMTPLIB = (5, 1, 2)
if not version_at_least(aiosmtplib.__version__, MIN_AIOSMTPLIB):  # pragma: no cover
    raise ImportError("aiosmtplib >= 5.1.2 is required (GHSA-vxj7-4xrp-5vr4)")


class SmtpTransport:
    """The smarthost over verified TLS (Postfix ``smtp_tls_security_level = secure``).

    The certificate is checked against ``upstream.tls_name`` (default ``upstream.host``);
    EHLO is the only command sent before TLS, and AUTH follows only once the certificate
    is verified (RFC 4954 4). Nothing of the envelope or the message is sent otherwise.
    Connections are kept between messages (``pool_idle_seconds``, ``pool_max_messages``);
    :meth:`close` QUITs those still open.
    """

    def __init__(self, upstream: Upstream, hostname: str) -> None:
        self.upstream = upstream
        self.helo = upstream.helo_name or hostname
        self.tls_name = upstream.tls_name or upstream.host
        self.context = client_context(upstream.ca_file)
        self.credentials = _read_credentials(upstream.credentials_file)
        self.pool = ConnectionPool(
            upstream.pool_idle_seconds, upstream.pool_max_messages, upstream.timeout
        )

    async def send(
        self, mail_from: str, rcpt_tos: list[str], content: Content, *, clean: bool = False
    ) -> AttemptResult:
        up = self.upstream
        kept = await self.pool.take()
        if kept is None:
            kept = Kept(await self._open())  # TempFailure: nothing sent, the caller defers
        # Read for every message, from the connection it goes over.
        evidence = _evidence(kept.client, f"{up.host}:{up.port}")
        try:
            result = await self._session(kept, mail_from, rcpt_tos, content, evidence, clean)
        except TempFailure as t:
            # TLS was up: the record keeps how far the attempt got (TLS-6). The line is
            # in an unknown state (a reply may still be on its way): never used again.
            self.pool.discard(kept)
            return not_sent(rcpt_tos, f"{t.enhanced} {t.text}", evidence)
        except BaseException:
            self.pool.discard(kept)
            raise
        if kept.messages == 0:
            # Once per connection: reading ``session`` copies it, peer certificate and
            # all (CPython re-encodes it), a tenth of the loop's time if done per message.
            self._keep_session(kept.client)
        self.pool.give_back(kept)
        return result

    async def close(self) -> None:
        """QUIT the kept connections (``serve`` stopping)."""
        await self.pool.close()

    async def probe(self) -> Evidence:
        """Connect, verify the certificate, EHLO over TLS and log in as delivery would,
        then QUIT, sending nothing else (``c4f-gateway health``); TempFailure if any of
        it fails."""
        up = self.upstream
        client = await self._open()
        try:
            evidence = _evidence(client, f"{up.host}:{up.port}")
            try:
                await client.ehlo()
                if self.credentials:
                    await client.login(*self.credentials)
            except aiosmtplib.SMTPResponseException as exc:
                raise TempFailure(
                    f"upstream {up.host}: {exc.code} {exc.message}", enhanced="4.7.8"
                ) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise TempFailure(f"upstream {up.host}: {_describe(exc)}") from exc
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit(timeout=min(up.timeout, 5.0))
            return evidence
        finally:
            client.close()

    async def _session(
        self,
        kept: Kept,
        mail_from: str,
        rcpt_tos: list[str],
        content: Content,
        evidence: Evidence,
        clean: bool,
    ) -> AttemptResult:
        """EHLO and AUTH on a new connection, then one transaction; TempFailure when the
        connection failed (it is not reused)."""
        up = self.upstream
        client = kept.client
        try:
            if kept.messages == 0:
                await client.ehlo()  # RFC 3207 4.2: forget what was said before TLS
            if kept.messages == 0 and self.credentials:
                try:
                    await client.login(*self.credentials)
                except aiosmtplib.SMTPResponseException as exc:
                    # Our credentials are a setting, not the message's fault: defer.
                    raise TempFailure(
                        f"upstream {up.host} refused our login: {exc.code} {exc.message}",
                        enhanced="4.7.8",
                    ) from exc
            result = await transaction(
                client,
                mail_from,
                rcpt_tos,
                content,
                evidence,
                final_reply_timeout=up.final_reply_timeout,
                clean=clean,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise TempFailure(f"upstream {up.host}: {_describe(exc)}", enhanced="4.4.2") from exc
        return result

    def _keep_session(self, client: aiosmtplib.SMTP) -> None:
        """The next new connection offers this one's TLS session (TLS 1.3: its ticket,
        which has arrived by the end of a transaction)."""
        if not client.is_connected:
            return
        ssl_object = client.get_transport_info("ssl_object")
        if ssl_object is not None and ssl_object.session is not None:
            self.context.keep(self.tls_name, ssl_object.session)

    async def _open(self) -> aiosmtplib.SMTP:
        """Connected, TLS negotiated and the certificate verified; else TempFailure."""
        up = self.upstream
        implicit = up.tls == "implicit"
        sock = await _tcp_connect(up.host, up.port, up.timeout)
        client: aiosmtplib.SMTP | None = None
        try:
            # Our own socket, so that aiosmtplib verifies the certificate against
            # ``tls_name``: it uses the hostname it is given as the TLS server name.
            client = aiosmtplib.SMTP(
                hostname=self.tls_name,
                sock=sock,
                local_hostname=self.helo,
                timeout=up.timeout,
                tls_context=self.context,
                use_tls=implicit,
                # Never start_tls=None: that sends in clear when STARTTLS is missing.
                # We send STARTTLS ourselves (below) and defer when it is not offered.
                start_tls=False,
            )
            try:
                await client.connect()  # the greeting (after the handshake, when implicit)
            except (aiosmtplib.SMTPException, OSError) as exc:
                # The TCP connection is already up: when implicit, what failed here is
                # the handshake, unless the greeting itself was a refusal.
                if implicit and not isinstance(exc, aiosmtplib.SMTPConnectResponseError):
                    raise _tls_failure(up.host, exc) from exc
                raise TempFailure(
                    f"upstream {up.host}: no greeting: {_describe(exc)}", enhanced="4.4.2"
                ) from exc
            if not implicit:
                await self._starttls(client)
            if client.get_transport_info("ssl_object") is None:  # defence in depth
                raise TempFailure(
                    f"upstream {up.host}: TLS is required, but was not established",
                    enhanced="4.7.4",
                )
        except BaseException:
            if client is not None:
                client.close()
            sock.close()
            raise
        return client

    async def _starttls(self, client: aiosmtplib.SMTP) -> None:
        host = self.upstream.host
        try:
            await client.ehlo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TempFailure(
                f"upstream {host}: EHLO failed: {_describe(exc)}", enhanced="4.4.2"
            ) from exc
        if not client.supports_extension("starttls"):
            # Postfix smtp_tls_security_level=encrypt wording; TLS-1.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit(timeout=min(self.upstream.timeout, 5.0))
            raise TempFailure(
                f"TLS is required, but was not offered by host {host}", enhanced="4.7.4"
            )
        try:
            await client.starttls()
        except aiosmtplib.SMTPResponseException as exc:
            raise TempFailure(
                f"TLS is required, but host {host} refused to start TLS: {exc.code} {exc.message}",
                enhanced="4.7.4",
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _tls_failure(host, exc) from exc


def _tls_failure(host: str, exc: BaseException) -> TempFailure:
    """TLS-3/TLS-4: a bad certificate or a failed handshake; both defer, 4.7.5."""
    cert = _cert_error(exc)
    if cert is not None:
        return TempFailure(
            f"Server certificate not verified (host {host}): {cert.verify_message}",
            enhanced="4.7.5",
        )
    return TempFailure(f"Cannot start TLS with host {host}: {_describe(exc)}", enhanced="4.7.5")


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, ssl.SSLCertVerificationError):
            return e
        e = e.__cause__ or e.__context__
    return None


def _describe(exc: BaseException) -> str:
    """The error and its cause: aiosmtplib wraps e.g. a bare ConnectionResetError."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text += f" ({type(cause).__name__}{': ' if str(cause) else ''}{cause})"
    return text


async def _tcp_connect(host: str, port: int, limit: float) -> socket.socket:
    """A connected non-blocking socket to the first address of ``host`` that answers."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), limit)
    except (OSError, TimeoutError) as exc:
        raise TempFailure(f"upstream {host}: cannot resolve: {exc}", enhanced="4.4.3") from exc
    errors: list[str] = []
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), limit)
        except (OSError, TimeoutError) as exc:
            sock.close()
            errors.append(f"{addr[0]}: {exc or type(exc).__name__}")
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise TempFailure(
        f"upstream {host} port {port}: connection failed: {'; '.join(errors)}", enhanced="4.4.1"
    )


def _evidence(client: aiosmtplib.SMTP, host: str) -> Evidence:
    version, cipher, fingerprint = peer_evidence(client.get_transport_info("ssl_object"))
    return Evidence(host=host, tls_version=version, cipher=cipher, cert_sha256=fingerprint)


def _read_credentials(path: Path | None) -> tuple[str, str] | None:
    """User and password for the upstream: never in the main config (issue 2)."""
    if path is None:
        env_user, env_pass = (
            os.environ.get("C4F_UPSTREAM_USER"),
            os.environ.get("C4F_UPSTREAM_PASSWORD"),
        )
        return (env_user, env_pass) if env_user and env_pass else None
    lines = read_secret_file(path, "credentials file", "utf-8").splitlines()
    if len(lines) < 2 or not lines[0] or not lines[1]:
        raise ConfigError(f"{path}: expected two lines: user, then password")
    return lines[0], lines[1]
