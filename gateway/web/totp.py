"""TOTP second factor for console sign-in (RFC 6238, 30-second steps, 6 digits).

Secrets live in the shared SQLite store sealed with the spool keyring, bound to the
login, so a copy of the database alone reveals none. A code is accepted one step
either side of now (clock drift, RFC 6238 section 5.2) and only once: the step it
matched is stored, and a code from that step or an earlier one is refused (replay).
Enrolment is a command (``c4f-gateway web totp-enrol LOGIN``), run by an admin, or a
one-time link the admin issues (``c4f-gateway web enrol-link LOGIN``): the link's token is
stored only as a keyed hash (the spool keyring's HMAC, so a copy of the database finds no
link), it is valid for 24 hours and once, and the new secret it shows is pending (sealed,
bound to the link) until the person confirms it with a current code. A newer link for the
same login replaces an unused older one; issuing a link forgets the expired ones. A link
is found by the HMAC of any key the spool keyring holds, so `keys rotate` leaves it
working; the id of the key it was made with is stored beside the HMAC, and `keys retire`
refuses that key while the link is unused and unexpired (:func:`link_key_ids`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from pyotp import OTPVerificationError

from gateway.crypto import Keyring, SealedColumn
from gateway.errors import SpoolCorrupt
from gateway.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_totp (
    login TEXT PRIMARY KEY,
    secret BLOB NOT NULL,            -- sealed base32 secret
    enrolled REAL NOT NULL,
    last_step INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS web_totp_links (
    key BLOB PRIMARY KEY,            -- keyed hash (HMAC, spool keyring) of the link's token
    login TEXT NOT NULL,
    issued REAL NOT NULL,
    expires REAL NOT NULL,
    used REAL,                       -- when a code confirmed it; then never again
    proof TEXT,                      -- SHA-256 of the cookie given after the password step
    secret BLOB                      -- the pending secret, sealed, bound to the link
);
"""
LINK_TTL = 24 * 3600.0
LINK_PURPOSE = b"totp-link"


@dataclass(frozen=True)
class EnrolLink:
    """An unused, unexpired enrolment link (what its token found)."""

    key: bytes
    login: str
    expires: float
    proof: str | None


class TotpStore:
    def __init__(
        self, store: Store, keyring: Keyring, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        store.ensure(SCHEMA)

    @staticmethod
    def _aad(login: str) -> bytes:
        return b"totp:" + login.lower().encode()

    def enrol(self, login: str) -> str:
        """A new secret for ``login`` (replacing any old one); returns it in base32."""
        secret = pyotp.random_base32()
        sealed = self.keyring.seal(secret.encode(), self._aad(login))
        self.store.execute(
            "INSERT INTO web_totp (login, secret, enrolled, last_step) VALUES (?, ?, ?, 0)"
            " ON CONFLICT(login) DO UPDATE SET secret = excluded.secret,"
            " enrolled = excluded.enrolled, last_step = 0",
            (login.lower(), sealed, self.clock()),
        )
        return secret

    def remove(self, login: str) -> bool:
        return self.store.execute("DELETE FROM web_totp WHERE login = ?", (login.lower(),)) == 1

    def enrolled(self, login: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM web_totp WHERE login = ?", (login.lower(),)))

    def logins(self) -> set[str]:
        return {r["login"] for r in self.store.query("SELECT login FROM web_totp")}

    @staticmethod
    def uri(secret: str, login: str, issuer: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=login.lower(), issuer_name=issuer)

    def issue_link(self, login: str, ttl: float = LINK_TTL) -> str:
        """A one-time enrolment link's token for ``login``, valid ``ttl`` seconds; any
        unused older link of that login stops working."""
        token = secrets.token_urlsafe(32)
        key = self._link_keys(token)[0]
        now = self.clock()
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM web_totp_links WHERE expires <= ? OR (login = ? AND used IS NULL)",
                (now, login.lower()),
            )
            conn.execute(
                "INSERT INTO web_totp_links (key, login, issued, expires) VALUES (?, ?, ?, ?)",
                (key, login.lower(), now, now + ttl),
            )
        return token

    def link(self, token: str) -> EnrolLink | None:
        """The link ``token`` opens, or None when it is unknown, used or expired."""
        if not token or len(token) > 100:
            return None
        # (bare hashes: links issued before the key's id was kept beside them)
        keys = [*self._link_keys(token), *self.keyring.lookups(token, LINK_PURPOSE)]
        marks = ", ".join("?" * len(keys))
        rows = self.store.query(
            f"SELECT key, login, expires, proof FROM web_totp_links WHERE key IN ({marks})"  # noqa: S608
            " AND used IS NULL AND expires > ?",
            (*keys, self.clock()),
        )
        if not rows:
            return None
        r = rows[0]
        return EnrolLink(bytes(r["key"]), r["login"], r["expires"], r["proof"])

    def _link_keys(self, token: str) -> list[bytes]:
        """What a link of ``token`` may be stored under: its keyed hash by each key held (the
        current key's first), after that key's id, so that ``keys retire`` can tell which
        key an unused link still needs (:func:`link_key_ids`)."""
        while True:
            ids = self.keyring.ids
            hashes = self.keyring.lookups(token, LINK_PURPOSE)
            if self.keyring.ids == ids and len(hashes) == len(ids):  # not rotated meanwhile
                return [kid.encode() + b" " + h for kid, h in zip(ids, hashes, strict=True)]

    @staticmethod
    def _link_aad(link: EnrolLink) -> bytes:
        return link_aad(link.key, link.login)

    def start(self, link: EnrolLink) -> str:
        """After the password step: a new pending secret for the link, and the proof (a
        cookie value) that the same browser gave the password. Returns the proof."""
        proof = secrets.token_urlsafe(32)
        sealed = self.keyring.seal(pyotp.random_base32().encode(), self._link_aad(link))
        self.store.execute(
            "UPDATE web_totp_links SET proof = ?, secret = ? WHERE key = ? AND used IS NULL",
            (hashlib.sha256(proof.encode()).hexdigest(), sealed, link.key),
        )
        return proof

    def pending(self, link: EnrolLink, proof: str) -> str | None:
        """The pending secret shown to the browser holding ``proof``, or None."""
        if link.proof is None or not proof:
            return None
        if not hmac.compare_digest(link.proof, hashlib.sha256(proof.encode()).hexdigest()):
            return None
        rows = self.store.query("SELECT secret FROM web_totp_links WHERE key = ?", (link.key,))
        if not rows or rows[0]["secret"] is None:
            return None
        try:
            return self.keyring.open(rows[0]["secret"], self._link_aad(link)).decode()
        except SpoolCorrupt:
            return None

    def confirm(self, link: EnrolLink, proof: str, code: str) -> bool:
        """With a current code for the pending secret: the secret becomes the login's second
        factor (replacing any old one) and the link is used up. False changes nothing."""
        secret = self.pending(link, proof)
        if secret is None:
            return False
        step = _matched_step(secret, code, self.clock())
        if step is None:
            return False
        now = self.clock()
        with self.store.transaction() as conn:
            used = conn.execute(
                "UPDATE web_totp_links SET used = ?, secret = NULL, proof = NULL"
                " WHERE key = ? AND used IS NULL AND expires > ?",
                (now, link.key, now),
            ).rowcount
            if used != 1:
                return False  # used meanwhile (another tab) or expired
            conn.execute(
                "INSERT INTO web_totp (login, secret, enrolled, last_step) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(login) DO UPDATE SET secret = excluded.secret,"
                " enrolled = excluded.enrolled, last_step = excluded.last_step",
                (
                    link.login,
                    self.keyring.seal(secret.encode(), self._aad(link.login)),
                    now,
                    step,  # the confirming code is used: it cannot sign in as well
                ),
            )
        return True

    def check(self, login: str, code: str) -> bool:
        """True once per valid code; False for a wrong, stale or replayed one."""
        if _digits(code) is None:
            return False
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT secret, last_step FROM web_totp WHERE login = ?", (login.lower(),)
            ).fetchone()
            if row is None:
                return False
            try:
                secret = self.keyring.open(row["secret"], self._aad(login)).decode()
            except SpoolCorrupt:
                return False
            step = _matched_step(secret, code, self.clock())
            if step is None or step <= row["last_step"]:
                return False  # wrong, or already used (or older than a used one): replay
            conn.execute("UPDATE web_totp SET last_step = ? WHERE login = ?", (step, login.lower()))
        return True


def _digits(code: str) -> str | None:
    """The code as typed, blanks taken out, if that is six digits."""
    code = code.strip().replace(" ", "")
    return code if len(code) == 6 and code.isdigit() else None


def _matched_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code for ``secret`` is ``code``, one step either side of
    ``now`` (clock drift, RFC 6238 section 5.2); None for a wrong or malformed code."""
    digits = _digits(code)
    if digits is None:
        return None
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(digits, for_time=now, valid_window=1)
    except OTPVerificationError:
        return None


def link_key_ids(store: Store, now: float) -> Counter[str]:
    """How many unused, unexpired enrolment links each key id found: a link is known only by
    its token's keyed hash, which a reseal cannot renew, so the key stays needed until
    the link is used, expires or is replaced by a newer one for the same login."""
    found: Counter[str] = Counter()
    if not store.query("SELECT 1 FROM sqlite_master WHERE name = 'web_totp_links'"):
        return found
    rows = store.query("SELECT key FROM web_totp_links WHERE used IS NULL AND expires > ?", (now,))
    for r in rows:
        kid, space, _ = bytes(r["key"]).partition(b" ")  # a key id has no blank
        if space:
            found[kid.decode("ascii", "replace")] += 1
    return found


def link_aad(key: bytes, login: str) -> bytes:
    """What an enrolment link's pending secret is bound to: the link (its keyed hash) and
    the login it enrols."""
    return b"totp-link:" + key + b":" + login.encode()


# What ``keys list`` counts and ``keys reseal spool`` seals again: each second-factor
# secret, bound to its login, and each enrolment link's pending secret, bound to its link
# (so ``keys retire`` waits for a link in progress, or its reseal).
SEALED = [
    SealedColumn("web_totp", "secret", lambda r: TotpStore._aad(r["login"])),
    SealedColumn("web_totp_links", "secret", lambda r: link_aad(bytes(r["key"]), r["login"])),
]
