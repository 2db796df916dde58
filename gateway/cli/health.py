"""``c4f-gateway health``: is the gateway able to take, keep and deliver mail right now?

For monitoring scripts and the container's ``HEALTHCHECK``: one line per check, ``ok`` or
``FAIL``, and exit status 0 only when every check passed. It reads the same config as
``serve`` and runs beside it (the database is shared; nothing of a message is read):

- each listener answers ``220`` (over TLS for the implicit-TLS ones);
- the server certificate is readable and more than 14 days from expiry;
- the database takes a write and commits it (a full disk fails here: ``serve`` then
  pauses delivery until it can record again, DUR-10);
- the database's filesystem has the free space below which new mail is refused;
- no message waits longer than ``--max-queue-age``, none is set aside;
- ``register verify`` passes and a checkpoint covers the chain;
- the upstream accepts a verified TLS connection and our login (nothing is sent), or the
  development Maildir folder is writable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from gateway.cli.common import add_config_arg, load_settings, logs_to_stderr
from gateway.errors import TempFailure
from gateway.hostport import parse_hostport
from gateway.queue.smtp_transport import SmtpTransport
from gateway.register.ledger import Register
from gateway.settings import Settings
from gateway.store import Store

PROBE_TIMEOUT = 5.0
CERT_WARNING_DAYS = 14


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="check that the gateway can take, keep and deliver mail (exit 0 or 1)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arg(p)
    p.add_argument(
        "--max-queue-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="fail when a message has waited longer than this (default 3600)",
    )
    p.add_argument(
        "--no-upstream",
        action="store_true",
        help="skip the connection to the upstream (e.g. to check more often than that)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logs_to_stderr()
    settings = load_settings(args)
    checks = asyncio.run(_listeners(settings))
    checks.append(certificate(settings))
    if not settings.storage.database.exists():
        checks.append(Check("database", False, f"{settings.storage.database}: no database"))
    else:
        store = Store(settings.storage.database)
        try:
            checks += [
                database(store),
                free_space(settings),
                queue(store, args.max_queue_age),
                register(store, settings),
            ]
        finally:
            store.close()
    if not args.no_upstream:
        checks.append(asyncio.run(upstream(settings)))
    for c in checks:
        print(c.line())
    return 0 if all(c.ok for c in checks) else 1


def _guard(name: str, check: Callable[[], Check]) -> Check:
    """A check that crashes is a failed check, never a passed one."""
    try:
        return check()
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")


async def _listeners(settings: Settings) -> list[Check]:
    probes = [(a, False) for a in settings.listen.starttls]
    probes += [(a, True) for a in settings.listen.implicit_tls]
    return [await listener(address, implicit) for address, implicit in probes]


async def listener(address: str, implicit: bool) -> Check:
    """The listener at ``address`` greets with 220 (after the TLS handshake if implicit)."""
    name = f"listener {address}"
    host, port = parse_hostport(address, "listen")
    # A listener on every address is reached on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    context = None
    if implicit:
        # Our own listener: what counts is that it answers; the certificate has its own check.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), PROBE_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        return Check(name, False, f"no connection: {exc or type(exc).__name__}")
    try:
        line = b"220-"
        while line[3:4] == b"-":  # a multi-line greeting
            line = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT)
        writer.write(b"QUIT\r\n")
        with contextlib.suppress(OSError):
            await writer.drain()
    except (OSError, TimeoutError) as exc:
        return Check(name, False, f"no greeting: {exc or type(exc).__name__}")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    greeting = line.decode("ascii", "replace").strip()
    return Check(name, greeting.startswith("220"), f"answered {greeting[:60]!r}")


def certificate(settings: Settings) -> Check:
    def read() -> Check:
        cert = x509.load_pem_x509_certificate(settings.tls.cert_file.read_bytes())
        left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
        until = f"valid until {cert.not_valid_after_utc:%Y-%m-%d}"
        if left.days < CERT_WARNING_DAYS:
            return Check("certificate", False, f"{until}: renew it ({left.days} days left)")
        return Check("certificate", True, until)

    return _guard("certificate", read)


def database(store: Store) -> Check:
    """A real write, committed with ``synchronous=FULL`` as every acceptance is."""
    try:
        store.ensure("CREATE TABLE IF NOT EXISTS health (name TEXT PRIMARY KEY, at REAL)")
        started = time.monotonic()
        with store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO health VALUES ('check', ?)", (time.time(),))
        took = (time.monotonic() - started) * 1000
    except Exception as exc:
        return Check(
            "database",
            False,
            f"cannot commit: {exc} (new mail is refused with 451, delivery pauses)",
        )
    return Check("database", True, f"writable, commit took {took:.0f} ms")


def free_space(settings: Settings) -> Check:
    limits = settings.limits
    needed = limits.min_free_space or int(1.5 * limits.max_message_size)
    free = shutil.disk_usage(settings.storage.database.parent).free
    detail = f"{free / 2**20:,.0f} MiB free, mail is refused below {needed / 2**20:,.0f} MiB"
    return Check("free space", free >= needed, detail)


def queue(store: Store, max_age: float) -> Check:
    def read() -> Check:
        if not store.query("SELECT 1 FROM sqlite_master WHERE name = 'queue'"):
            return Check("queue", True, "no queue yet (`serve` has not run)")
        now = time.time()
        rows = store.query(
            "SELECT state, count(*) AS n, min(created) AS oldest FROM queue GROUP BY state"
        )
        by_state = {r["state"]: (r["n"], now - r["oldest"]) for r in rows}
        waiting, oldest = by_state.get("queued", (0, 0.0))
        held, held_oldest = by_state.get("held", (0, 0.0))
        aside = sum(n for state, (n, _) in by_state.items() if state in ("corrupt", "unapproved"))
        detail = f"{waiting} waiting"
        if waiting:
            detail += f", oldest {_age(oldest)}"
        if held:
            detail += f"; {held} held for approval, oldest {_age(held_oldest)}"
        if aside:
            detail += f"; {aside} SET ASIDE (see `c4f-gateway queue list`)"
        return Check("queue", oldest <= max_age and not aside, detail)

    return _guard("queue", read)


def register(store: Store, settings: Settings) -> Check:
    def read() -> Check:
        result = Register.from_settings(store, settings.register).verify()
        first = result.first
        if first is not None:
            return Check("register", False, f"FAILED VERIFICATION: {first.text}")
        detail = f"{result.count} entries, chain intact"
        if not result.proven:
            return Check(
                "register", False, detail + "; no checkpoint: truncation cannot be detected"
            )
        if result.uncheckpointed:
            detail += f"; not yet checkpointed: {result.uncheckpointed} entries"
        return Check("register", True, detail)

    return _guard("register", read)


async def upstream(settings: Settings) -> Check:
    if settings.delivery.transport == "maildir":
        folder = settings.delivery.maildir
        ok = folder.is_dir() and os.access(folder, os.W_OK)
        return Check("delivery folder", ok, f"{folder} {'writable' if ok else 'is not writable'}")
    up = settings.upstream
    name = f"upstream {up.host}:{up.port}"
    try:
        transport = SmtpTransport(up, settings.hostname)
        evidence = await transport.probe()
    except TempFailure as exc:
        return Check(name, False, exc.text)
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")
    login = "login accepted" if transport.credentials else "no login configured"
    return Check(name, True, f"verified TLS ({evidence.tls_version}), {login}")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
