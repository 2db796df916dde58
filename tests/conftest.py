"""Shared fixtures: a test CA, a recording upstream, and a running gateway, all real.

- ``ca``: a :class:`support.pki.TestCA` (certificates for the gateway and the upstream).
- ``upstream``: a started :class:`support.upstream.Upstream` (aiosmtpd, STARTTLS, test-CA
  certificate for ``localhost``) recording every message in ``upstream.arrived``.
- ``start_gateway``: ``await start_gateway(config={...}, upstream=upstream)`` starts a gateway on
  port 0 (STARTTLS and implicit TLS listeners) with its own config file, spool key and SQLite
  file in a fresh folder; ``config`` is merged into the defaults, e.g.
  ``{"pipeline": {"filters": ["sender", "disclaimer"]}, "filter": {"disclaimer": {...}}}``.
  Given the ``upstream`` fixture it relays to it over verified TLS, otherwise to
  a Maildir (``gw.maildir()`` returns the delivered files). Returns a
  :class:`support.harness.RunningGateway`: ``gw.add_staff(login)`` creates an account (password
  ``support.harness.PASSWORD``), ``await gw.send(login, rcpts, message)`` submits over
  STARTTLS + AUTH with aiosmtplib, ``await gw.client(login)`` gives a logged-in client.
  ``support.harness.message(...)`` builds a simple EmailMessage.
- ``support.rawsmtp.RawSMTP`` sends exact bytes for attack tests.
- ``london``: local time is Europe/London (BST in summer) for the test, so local dates and
  months are the same on every machine; a module uses it with
  ``pytestmark = pytest.mark.usefixtures("london")``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.harness import RunningGateway
from support.harness import start_gateway as _start
from support.pki import TestCA
from support.upstream import Upstream

from gateway.logging import configure

configure("console", "warning")


@pytest.fixture
def london(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def upstream(ca: TestCA) -> AsyncIterator[Upstream]:
    up = await Upstream(ca.issue("localhost", sans=["localhost", "127.0.0.1"])).start()
    yield up
    await up.stop()


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path, ca: TestCA) -> AsyncIterator[StartGateway]:
    started: list[RunningGateway] = []

    async def start(
        *, upstream: Upstream | None = None, folder: Path | None = None, **kw: Any
    ) -> RunningGateway:
        port = upstream.port if upstream is not None else None
        gw = await _start(folder or tmp_path / f"gw{len(started)}", ca, upstream_port=port, **kw)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.gateway.stop()
