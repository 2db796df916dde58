"""TLS contexts for the listeners and the upstream, and the dev certificate.

Listeners accept TLS 1.2 and newer only (INJ-6). Their certificate and key are read again
on SIGHUP (:class:`ServerTLS`: certificate renewal without a restart). The upstream context
always verifies the server certificate and its name, against the system store or a
configured CA file; there is no setting that turns verification off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    # TLS 1.3: one session ticket per handshake, as Postfix issues: enough for a client
    # to resume its next connection; OpenSSL's second is a record and a send more on
    # every connection, for a ticket a mail client does not use.
    ctx.num_tickets = 1
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load {cert_file} / {key_file}: {exc}") from exc
    return ctx


class ServerTLS:
    """The listeners' TLS, whose certificate and key can be replaced while they run.

    The listeners keep :attr:`context` for good (asyncio fixes a server's context when it
    starts). Its SNI callback, which OpenSSL calls for every ClientHello (with or without
    a server name), hands each new handshake to the newest context that loaded cleanly, so
    :meth:`reload` changes what new connections get; connections already open keep theirs.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._current = server_context(cert_file, key_file)
        self.context = server_context(cert_file, key_file)
        self.context.sni_callback = self._pick

    def _pick(self, conn: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        conn.context = self._current

    def reload(self) -> x509.Certificate:
        """Read the certificate and key files again and use them for new connections.
        Returns the new certificate; raises :class:`ConfigError`, and keeps the one in
        use, if they do not load (unreadable, not PEM, key and certificate not a pair)."""
        fresh = server_context(self.cert_file, self.key_file)
        try:
            cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        except (OSError, ValueError) as exc:  # replaced again since it loaded: next time
            raise ConfigError(f"tls: cannot read {self.cert_file}: {exc}") from exc
        self._current = fresh
        return cert


class ResumingContext(ssl.SSLContext):
    """A client context that offers the last session it was given (:meth:`keep`) to each
    new handshake for the same server name (RFC 5077, RFC 8446 2.2): a resumed session
    skips the certificate exchange and the signature.

    asyncio's TLS (which aiosmtplib uses, STARTTLS or implicit) has no way to pass a
    session, so :meth:`wrap_bio` adds it. A session belongs to the context that made it
    (``ssl`` refuses another's) and is offered only under the name it was verified for,
    since a resumed handshake checks no certificate; a server that declines it gets a
    full handshake, verified as always.
    """

    _kept: tuple[str, ssl.SSLSession] | None = None

    def keep(self, server_hostname: str, session: ssl.SSLSession) -> None:
        self._kept = (server_hostname, session)

    def kept(self, server_hostname: str | bytes | None) -> ssl.SSLSession | None:
        """The session to offer a server of that name, if any."""
        if self._kept is None or self._kept[0] != server_hostname:
            return None
        return self._kept[1]

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side:
            session = self.kept(server_hostname)
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def client_context(ca_file: Path | None) -> ResumingContext:
    """Verify the upstream's certificate chain and name; TLS 1.2 minimum (TLS-3, TLS-4).
    Nothing is resumed until a caller keeps a session (:meth:`ResumingContext.keep`)."""
    ctx = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    # RFC 6125 6.4.4: the name must be in subjectAltName; CN-only is not verified (TLS-3).
    ctx.hostname_checks_common_name = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_evidence(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> tuple[str, str, str]:
    """(protocol version, cipher name, SHA-256 of the peer's certificate) for the register."""
    if ssl_object is None:
        return "", "", ""
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return (
        ssl_object.version() or "",
        cipher[0] if cipher else "",
        hashlib.sha256(der).hexdigest() if der else "",
    )


def write_dev_certificate(cert_file: Path, key_file: Path, names: list[str]) -> None:
    """A self-signed certificate for the dev setup (loopback names), valid for one year."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
