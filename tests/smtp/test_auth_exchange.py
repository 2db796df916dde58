"""The AUTH exchange at its edges (catalogue AUTH-6, AUTH-7, AUTH-8).

AUTH-6: a successful login clears only its own account's failures, so one address cannot
reset its own throttle by logging in between guesses at other accounts. AUTH-7: an
over-long AUTH line gets a reply that says so (RFC 4954 6: ``500 5.5.6``). AUTH-8: ``=`` is
an empty initial response (RFC 4954 4), answered with the empty continuation ``334 ``.
"""

from __future__ import annotations

import asyncio
import base64

from conftest import StartGateway
from support.harness import PASSWORD
from support.rawsmtp import RawSMTP

ALICE = "alice@c4f.example"
BOB = "bob@c4f.example"
CAROL = "carol@c4f.example"
INVALID = "535 5.7.8 Authentication credentials invalid"
THROTTLED = "454 4.7.0 "


def _plain(login: str, password: str) -> str:
    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


async def _tls_session(port: int, tls: object, local: str = "127.0.0.1") -> RawSMTP:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    c = RawSMTP(reader, writer)
    assert (await c.reply()).startswith("220")
    assert (await c.cmd("EHLO client.test")).startswith("250")
    assert (await c.cmd("STARTTLS")).startswith("220")
    await c.starttls(tls)  # type: ignore[arg-type]
    assert (await c.cmd("EHLO client.test")).startswith("250")
    return c


async def test_auth6_own_login_does_not_reset_guessing_at_other_accounts(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={
            "auth": {
                "max_failures_per_client": 5,
                "max_failures_per_account": 10,
                "max_failures_per_session": 10,
            }
        }
    )
    for login in (ALICE, BOB, CAROL):
        gw.add_staff(login)
    guesses = await _tls_session(gw.port, gw.client_tls())
    for n in range(4):
        assert await guesses.cmd(f"AUTH PLAIN {_plain(BOB, f'guess-{n}')}") == INVALID
    await guesses.close()
    # The guesser logs in to an account of its own...
    own = await _tls_session(gw.port, gw.client_tls())
    assert (await own.login(ALICE, PASSWORD)).startswith("235")
    await own.close()
    # ...and its four guesses still count: one more, then the address is refused.
    guesses = await _tls_session(gw.port, gw.client_tls())
    assert await guesses.cmd(f"AUTH PLAIN {_plain(CAROL, 'guess-4')}") == INVALID
    assert (await guesses.cmd(f"AUTH PLAIN {_plain(CAROL, 'guess-5')}")).startswith(THROTTLED)
    assert (await guesses.login(BOB, PASSWORD)).startswith(THROTTLED)
    await guesses.close()


async def test_auth6_login_clears_its_own_account_and_its_own_typos(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway(
        config={
            "auth": {
                "max_failures_per_client": 5,
                "max_failures_per_account": 4,
                "max_failures_per_session": 10,
            }
        }
    )
    gw.add_staff(ALICE)
    gw.add_staff(BOB)
    c = await _tls_session(gw.port, gw.client_tls(), "127.0.0.2")
    for n in range(3):
        assert await c.cmd(f"AUTH PLAIN {_plain(ALICE, f'typo-{n}')}") == INVALID
    assert (await c.login(ALICE, PASSWORD)).startswith("235")
    await c.close()
    # Alice's account starts again from nothing, wherever she connects from...
    c = await _tls_session(gw.port, gw.client_tls(), "127.0.0.3")
    for n in range(3):
        assert await c.cmd(f"AUTH PLAIN {_plain(ALICE, f'typo-{n}')}") == INVALID
    assert (await c.login(ALICE, PASSWORD)).startswith("235")
    await c.close()
    # ...and her typos no longer weigh on the address she logged in from.
    c = await _tls_session(gw.port, gw.client_tls(), "127.0.0.2")
    for n in range(4):
        assert await c.cmd(f"AUTH PLAIN {_plain(BOB, f'typo-{n}')}") == INVALID
    assert (await c.login(BOB, PASSWORD)).startswith(THROTTLED)  # Bob's own limit: 4
    await c.close()


async def test_auth7_overlong_auth_line_is_called_too_long(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _tls_session(gw.port, gw.client_tls())
    reply = await c.cmd("AUTH PLAIN " + "A" * 20_000)
    assert reply.startswith("500 5.5.6 ") and "too long" in reply, reply
    # The same for a 20,000-character answer to the server's challenge.
    assert await c.cmd("AUTH PLAIN") == "334 "
    reply = await c.cmd("A" * 20_000)
    assert reply.startswith("500 5.5.6 ") and "too long" in reply, reply
    # Other over-long command lines are called too long as well, and the session goes on.
    reply = await c.cmd("EHLO " + "x" * 20_000)
    assert reply.startswith("500 5.5.2 ") and "too long" in reply, reply
    assert (await c.login(ALICE, PASSWORD)).startswith("235")
    await c.close()


async def test_auth8_equals_sign_is_an_empty_initial_response(
    start_gateway: StartGateway,
) -> None:
    gw = await start_gateway()
    gw.add_staff(ALICE)
    c = await _tls_session(gw.port, gw.client_tls())
    assert await c.cmd("AUTH PLAIN =") == "334 "
    assert (await c.cmd(_plain(ALICE, PASSWORD))).startswith("235")
    await c.close()
    c = await _tls_session(gw.port, gw.client_tls())
    username = base64.b64encode(b"User Name\x00").decode()
    assert await c.cmd("AUTH LOGIN =") == f"334 {username}"
    assert (await c.cmd(base64.b64encode(ALICE.encode()).decode())).startswith("334 ")
    assert (await c.cmd(base64.b64encode(PASSWORD.encode()).decode())).startswith("235")
    await c.close()
