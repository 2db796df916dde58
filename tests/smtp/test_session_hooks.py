"""A new session gets the handler's hooks as aiosmtpd would find them, found once for the
handler rather than by listing its attributes at every connection (gateway.smtp.hooks)."""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP
from conftest import StartGateway

from gateway.smtp.hooks import hooks_of


async def test_a_session_has_the_hooks_the_library_finds(start_gateway: StartGateway) -> None:
    gw = await start_gateway()
    handler = gw.gateway.handler
    ours = gw.gateway._factory(False)()
    library = SMTP(handler, loop=asyncio.get_running_loop())
    assert ours.event_handler is handler
    assert ours._handle_hooks == library._handle_hooks
    assert {"EHLO", "HELO", "MAIL", "RCPT", "DATA"} <= set(ours._handle_hooks)
    assert ours._ehlo_hook_ver == library._ehlo_hook_ver == "new"
    assert set(ours._auth_methods) == set(library._auth_methods) == {"LOGIN", "PLAIN"}
    assert all(m.is_builtin for m in ours._auth_methods.values())
    # Found once: every session shares the one table.
    assert gw.gateway._factory(True)()._handle_hooks is ours._handle_hooks
    assert hooks_of(handler).handle is ours._handle_hooks
