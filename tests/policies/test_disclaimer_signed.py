"""Signed and encrypted mail: never altered inside, so the signature verifies after the notice.

Keys are made in the fixtures: an S/MIME certificate with ``cryptography`` (verified with the
``openssl`` command) and an OpenPGP key with ``gpg`` (Debian package ``gnupg``), each in a
temporary folder. Each check also verifies a tampered copy, which must fail, so a verifier
that accepts everything would be caught.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from filters.disclaimer import DEFAULT_FILE, Notice, add_notice
from gateway.errors import Refused

NOTICE = Notice.load(DEFAULT_FILE)
HEADERS = (
    b"From: Alice Carer <alice@c4f.example>\r\nTo: bob@council.example\r\n"
    b"Subject: Signed court notes\r\nMIME-Version: 1.0\r\n"
)
INNER = (
    b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    b"Signed notes for the court.\r\nSecond line.\r\n"
)


@dataclass
class SmimeSigner:
    cert_file: Path
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def sign(self, data: bytes) -> bytes:
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(self.cert, self.key, hashes.SHA256())
            .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
        )

    def verifies(self, entity: bytes, tmp: Path) -> bool:
        path = tmp / "entity.eml"
        path.write_bytes(entity)
        done = subprocess.run(
            [
                "openssl",
                "smime",
                "-verify",
                "-in",
                str(path),
                "-CAfile",
                str(self.cert_file),
                "-noverify",
                "-out",
                os.devnull,
            ],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0


@pytest.fixture(scope="module")
def smime(tmp_path_factory: pytest.TempPathFactory) -> SmimeSigner:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command (Debian package openssl) is needed to verify S/MIME")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice@c4f.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file = tmp_path_factory.mktemp("smime") / "cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return SmimeSigner(cert_file, key, cert)


@dataclass
class Gpg:
    home: Path

    def run(self, *args: str, data: bytes | None = None, check: bool = True) -> bytes:
        done = subprocess.run(
            ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            input=data,
            capture_output=True,
            env={**os.environ, "GNUPGHOME": str(self.home)},
            check=check,
        )
        return done.stdout if done.returncode == 0 else b""

    def verifies(self, data: bytes, signature: bytes, tmp: Path) -> bool:
        (tmp / "data").write_bytes(data)
        (tmp / "data.asc").write_bytes(signature)
        done = subprocess.run(
            ["gpg", "--batch", "--verify", str(tmp / "data.asc"), str(tmp / "data")],
            capture_output=True,
            env={**os.environ, "GNUPGHOME": str(self.home)},
            check=False,
        )
        return done.returncode == 0


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gpg]:
    if shutil.which("gpg") is None:
        pytest.skip("gpg (Debian package gnupg) is needed to make and verify PGP/MIME signatures")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    g = Gpg(home)
    g.run("--quick-gen-key", "Alice Carer <alice@c4f.example>", "ed25519", "sign", "1d")
    yield g
    # Stop the agent gpg started for this home (by its home folder, not by name).
    subprocess.run(
        ["gpgconf", "--kill", "gpg-agent"],
        env={**os.environ, "GNUPGHOME": str(home)},
        check=False,
        capture_output=True,
    )


def pgp_signed_message(g: Gpg) -> bytes:
    signature = g.run("--detach-sign", "--armor", "--digest-algo", "SHA256", data=INNER)
    signature = signature.replace(b"\n", b"\r\n")
    return (
        HEADERS + b'Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol="application/'
        b'pgp-signature"; boundary="pgp-sig-b"\r\n\r\n'
        b"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n"
        b"--pgp-sig-b\r\n" + INNER + b"\r\n--pgp-sig-b\r\n"
        b'Content-Type: application/pgp-signature; name="signature.asc"\r\n\r\n'
        + signature
        + b"\r\n--pgp-sig-b--\r\n"
    )


def first_part(content: bytes, boundary: bytes) -> bytes:
    """The bytes of the first body part of the multipart with this boundary (RFC 2046)."""
    delim = b"--" + boundary + b"\r\n"
    start = content.index(delim) + len(delim)
    return content[start : content.index(b"\r\n--" + boundary, start)]


def wrapper_boundary(content: bytes) -> bytes:
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    boundary = msg.get_boundary()
    assert boundary is not None
    return boundary.encode()


def pgp_signature(content: bytes) -> bytes:
    start = content.index(b"-----BEGIN PGP SIGNATURE-----")
    end = content.index(b"-----END PGP SIGNATURE-----") + len(b"-----END PGP SIGNATURE-----")
    return content[start:end] + b"\r\n"


def test_smime_signature_verifies_before_and_after(smime: SmimeSigner, tmp_path: Path) -> None:
    original = HEADERS + smime.sign(INNER)
    assert smime.verifies(original, tmp_path)
    result = add_notice(original, NOTICE)
    assert result.action == "wrapped"
    signed = first_part(result.content, wrapper_boundary(result.content))
    assert signed.startswith(b"MIME-Version: 1.0\r\nContent-Type: multipart/signed;") or (
        signed.startswith(b"Content-Type: multipart/signed;")
    )
    assert smime.verifies(signed, tmp_path)
    tampered = signed.replace(b"Second line.", b"Second line!")
    assert tampered != signed and not smime.verifies(tampered, tmp_path)
    assert result.content.count(b"strictly confidential") == 1


def test_pgp_mime_signature_verifies_before_and_after(gpg: Gpg, tmp_path: Path) -> None:
    original = pgp_signed_message(gpg)
    assert gpg.verifies(first_part(original, b"pgp-sig-b"), pgp_signature(original), tmp_path)
    result = add_notice(original, NOTICE)
    assert result.action == "wrapped"
    data = first_part(result.content, b"pgp-sig-b")
    assert data == INNER.removesuffix(b"\r\n") or data == INNER
    assert gpg.verifies(data, pgp_signature(result.content), tmp_path)
    assert not gpg.verifies(
        data.replace(b"court", b"Court"), pgp_signature(result.content), tmp_path
    )
    assert result.content.count(b"strictly confidential") == 1


def test_refuse_policy_refuses_signed_mail(smime: SmimeSigner) -> None:
    original = HEADERS + smime.sign(INNER)
    with pytest.raises(Refused) as caught:
        add_notice(original, NOTICE, signed="refuse")
    assert (caught.value.code, caught.value.enhanced) == (554, "5.6.0")
    assert "unsigned" in caught.value.text


def test_refuse_policy_still_passes_signed_mail_that_carries_the_notice(
    smime: SmimeSigner,
) -> None:
    wrapped = add_notice(HEADERS + smime.sign(INNER), NOTICE).content
    again = add_notice(wrapped, NOTICE, signed="refuse")
    assert again.action == "present" and again.content == wrapped


def test_signed_part_next_to_body_text_is_left_alone(smime: SmimeSigner, tmp_path: Path) -> None:
    """mixed[text, signed]: the text gets the notice, the signed part stays as it was."""
    signed = smime.sign(INNER).removeprefix(b"MIME-Version: 1.0\r\n")
    original = (
        HEADERS + b'Content-Type: multipart/mixed; boundary="outer-b"\r\n\r\n'
        b"--outer-b\r\nContent-Type: text/plain\r\n\r\nCover note.\r\n"
        b"--outer-b\r\n" + signed + b"\r\n--outer-b--\r\n"
    )
    result = add_notice(original, NOTICE, signed="refuse")
    assert result.action == "inserted"
    second = result.content.split(b"\r\n--outer-b\r\n")[-1].split(b"\r\n--outer-b--")[0]
    assert second == signed
    assert smime.verifies(second, tmp_path)
    body = result.content.split(b"--outer-b\r\n")[1]
    assert b"Cover note.\r\n\r\nThis document is strictly confidential" in body


def test_alternative_with_a_signed_alternative_is_wrapped(smime: SmimeSigner) -> None:
    signed = smime.sign(INNER).removeprefix(b"MIME-Version: 1.0\r\n")
    original = (
        HEADERS + b'Content-Type: multipart/alternative; boundary="alt-b"\r\n\r\n'
        b"--alt-b\r\nContent-Type: text/plain\r\n\r\nPlain version.\r\n"
        b"--alt-b\r\n" + signed + b"\r\n--alt-b--\r\n"
    )
    result = add_notice(original, NOTICE)
    assert result.action == "wrapped"
    assert signed in result.content
    with pytest.raises(Refused):
        add_notice(original, NOTICE, signed="refuse")
