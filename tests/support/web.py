"""Shared builders for the review console tests (real SQLite files, real keys, real HTML).

Imported by the ``test_web*`` modules; holds no tests of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import httpx2 as httpx
import pyotp
from starlette.testclient import TestClient

from gateway.directory.passwords import hash_password
from gateway.directory.staff import StaffDirectory
from gateway.register.ledger import Register
from gateway.settings import Settings, load
from gateway.settings.register import register_settings
from gateway.settings.web import WebSettings
from gateway.store import Store
from gateway.web.app import create_app
from gateway.web.console import Console
from gateway.web.server import ConsoleServer
from support.harness import base_config, merge, write_config
from support.pki import TestCA

PASSWORD = "console-password-for-tests"
# Cheaper scrypt for test accounts only: same code path, the cost is stored in the hash.
_CHEAP_HASH = hash_password(PASSWORD, n=2**10)
ADMIN = "ada.admin@c4f.example"
MANAGER = "max.manager@c4f.example"
STAFF = "sam.staff@c4f.example"
BASE_URL = "https://console.test"
HELD_TO = "j.smith@cafcass.example"
HELD_SUBJECT = "Contact report for the Smith family"
HELD_REASON = "Risk of harm to the child"


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResolver:
    """dnspython's ``resolve(name, "MX")`` over a dict (unknown names: NXDOMAIN)."""

    def __init__(self, zones: dict[str, list[str]] | None = None) -> None:
        self.zones = zones or {}

    def resolve(self, qname: str, rdtype: str) -> Iterable[Any]:
        if qname not in self.zones:
            raise dns.resolver.NXDOMAIN()
        return [
            dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.MX, text)
            for text in self.zones[qname]
        ]


def add_account(store: Store, login: str, role: str, managers: tuple[str, ...] = ()) -> None:
    StaffDirectory(store)  # its table
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO staff (login, password_hash, aliases, created, role, managers)"
            " VALUES (?, ?, '[]', ?, ?, ?)",
            (login, _CHEAP_HASH, time.time(), role, repr(list(managers)).replace("'", '"')),
        )


def prepare(folder: Path, ca: TestCA, config: dict[str, Any] | None = None) -> Settings:
    """A gateway folder as `init` leaves it: config, spool and register keys, database."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "gateway.toml").exists():
        write_config(folder / "gateway.toml", merge(base_config(folder, ca, None), config or {}))
    settings = load(folder / "gateway.toml")
    Register.create_keys(register_settings(settings))
    Store(settings.storage.database).close()
    return settings


@dataclass
class Site:
    settings: Settings
    console: Console
    clock: Clock

    @property
    def store(self) -> Store:
        return self.console.store

    def client(self) -> TestClient:
        return TestClient(create_app(self.console), base_url=BASE_URL)


def make_site(
    folder: Path,
    ca: TestCA,
    *,
    web: WebSettings | None = None,
    config: dict[str, Any] | None = None,
    resolver: FakeResolver | None = None,
    accounts: bool = True,
) -> Site:
    settings = prepare(folder, ca, config)
    clock = Clock()
    console = Console.open(
        settings,
        web=web or WebSettings(require_totp=()),
        clock=clock,
        resolver=resolver or FakeResolver(),
    )
    if accounts:
        add_account(console.store, ADMIN, "admin")
        add_account(console.store, MANAGER, "manager")
        add_account(console.store, STAFF, "staff", (MANAGER,))
    return Site(settings, console, clock)


@asynccontextmanager
async def served(site: Site) -> AsyncIterator[str]:
    """The site's console served over plain HTTP on a free port, for a browser; its URL."""
    server = ConsoleServer(
        create_app(site.console), site.settings, https=False, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


def field_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no {name} field"
    return found.group(1)


def csrf_of(html: str) -> str:
    return field_value(html, "csrf")


def sign_in(
    client: TestClient, login: str, password: str = PASSWORD, secret: str = "", at: float = 0.0
) -> httpx.Response:
    """Password (and TOTP code when ``secret`` is given); returns the last response."""
    form = client.get("/signin")
    reply = client.post(
        "/signin",
        data={
            "signin_token": field_value(form.text, "signin_token"),
            "login": login,
            "password": password,
        },
        follow_redirects=False,
    )
    if secret and reply.headers.get("location") == "/signin/code":
        page = client.get("/signin/code")
        code = pyotp.TOTP(secret).at(at or time.time())
        reply = client.post(
            "/signin/code",
            data={"csrf": csrf_of(page.text), "code": code},
            follow_redirects=False,
        )
    return reply


def signed_in(client: TestClient, login: str, landing: str = "/register") -> str:
    """Sign ``client`` in as ``login`` (TOTP not required); returns its CSRF token.
    ``landing``: where sign-in sends that role ("/held" for staff)."""
    reply = sign_in(client, login)
    assert reply.status_code == 303 and reply.headers["location"] == landing, reply.text
    return csrf_of(client.get(landing).text)


def add_contact(client: TestClient, csrf: str, address: str, **fields: str) -> httpx.Response:
    """The console's "Add a contact" form sent for ``address`` (an address of Jo Smith at
    Cafcass, verified by phone, unless ``fields`` say otherwise); its reply, not followed."""
    data = {
        "csrf": csrf,
        "kind": "address",
        "address": address,
        "display_name": "Jo Smith",
        "organisation": "Cafcass",
        "verified_how": "phoned back on the office number",
        **fields,
    }
    return client.post("/contacts/new", data=data, follow_redirects=False)


def admin_actions(site: Site) -> list[tuple[str, str, dict[str, Any]]]:
    """The register's admin trail as (actor, action, details)."""
    from gateway.register.criteria import Filters

    return [
        (r.data["actor"], r.data["action"], r.data["details"])
        for r in site.console.register.records(Filters(kinds=("admin",)))
    ]


def hold(site: Site, qid: str, staff: str, *, consent: str, reasons: list[str]) -> None:
    """A message held for approval as the approval filter leaves it (to ``HELD_TO``, contact
    C-007 of Cafcass, family F-1042, an attachment notes.pdf), through the console's Holds."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = staff, HELD_TO, HELD_SUBJECT
    msg.set_content("Notes from Tuesday's contact.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="notes.pdf")
    site.console.holds.accept(
        queue_id=qid,
        staff=staff,
        peer="192.0.2.1",
        mail_from=staff,
        rcpt_tos=[HELD_TO],
        content=msg.as_bytes(),
        annotations={
            "disclosure": {"consent": consent, "reason": HELD_REASON, "family": "F-1042"},
            "recipients": {
                HELD_TO: {
                    "contact_id": "C-007",
                    "organisation": "Cafcass",
                    "display_name": "Jo Smith",
                }
            },
            "hold": {
                "reasons": reasons,
                "needs_note": consent != "obtained",
                "expires_after": 7 * 86400.0,
            },
        },
    )
