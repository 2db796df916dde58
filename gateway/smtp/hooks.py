"""The handler's hooks, found once per handler instead of once per connection.

aiosmtpd's ``SMTP.__init__`` finds the handler's ``handle_*`` hooks and ``auth_*``
mechanisms by listing every attribute of the handler (``dir``, ``inspect.getmembers``)
and reads the EHLO hook's signature, for every new connection: with the session's own
attributes, a quarter of a millisecond of a one-message connection. The gateway has one
handler for all its connections, so :func:`adopt` gives a new session what was found the
first time: the listener builds the session against :data:`NO_HOOKS` (nothing to list)
and then hands it the real handler's hooks, as the library would have found them.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, _AuthMechAttr


class _NoHooks:
    """A handler with no hooks: what the library inspects while a session is built."""


NO_HOOKS = _NoHooks()


@dataclass(frozen=True)
class Hooks:
    handle: dict[str, Any]  # "EHLO" -> handler.handle_EHLO, ... (read only, shared)
    auth: dict[str, _AuthMechAttr]  # the handler's own auth_* mechanisms
    ehlo: str | None  # the library's _ehlo_hook_ver


_found: weakref.WeakKeyDictionary[Any, Hooks] = weakref.WeakKeyDictionary()


def hooks_of(handler: Any) -> Hooks:
    """What ``SMTP.__init__`` finds in ``handler`` (aiosmtpd 1.4), found once."""
    known = _found.get(handler)
    if known is not None:
        return known
    names = [m for m in dir(handler) if m.startswith("handle_")]
    handle = {m.replace("handle_", ""): getattr(handler, m) for m in names}
    auth = {
        getattr(f, "__auth_mechanism_name__", name[5:].replace("__", "-")): _AuthMechAttr(f, False)
        for name, f in inspect.getmembers(handler)
        if name.startswith("auth_")
    }
    ehlo = None
    if "EHLO" in handle:
        params = len(inspect.signature(handle["EHLO"]).parameters)
        if params != 5:  # the library's 4-argument form is deprecated: not supported here
            raise RuntimeError(f"handle_EHLO takes {params} arguments, not 5")
        ehlo = "new"
    known = Hooks(handle, auth, ehlo)
    _found[handler] = known
    return known


def adopt(session: SMTP, handler: Any) -> None:
    """Give ``session``, built with :data:`NO_HOOKS`, ``handler``'s hooks."""
    hooks = hooks_of(handler)
    session.event_handler = handler
    session._handle_hooks = hooks.handle
    session._ehlo_hook_ver = hooks.ehlo
    session._auth_methods.update(hooks.auth)
