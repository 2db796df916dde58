"""The filter shape and the plain loop that runs filters in order.

A filter is a small class with its options in ``__init__`` and async methods for
the phases it cares about:

- ``on_mail(tx)``: judge the sender (``tx.mail_from`` is set);
- ``on_rcpt(tx, address)``: judge one recipient before it is added to ``tx.rcpt_tos``;
- ``on_data(tx, content) -> Content | Splices``: read or change the message: return
  ``content`` itself to only observe, :class:`~gateway.mail.splices.Splices` to change a
  few places of it (made in the message's own buffer: a large message is not held
  twice), or a whole new message.

A filter refuses by raising :class:`gateway.errors.Refused`. Any other exception is
a fault we cannot judge: the pipeline turns it into ``451 4.3.0`` (fail closed),
never into an acceptance.

Each filter module exposes ``create(options, context) -> Filter``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused, TempFailure
from gateway.mail.content import Content
from gateway.mail.splices import Splices
from gateway.mail.wire import edit_is_clean, span_is_clean

__all__ = [
    "Content",
    "Filter",
    "FilterContext",
    "Pipeline",
    "Splices",
    "checked_options",
    "load_filters",
    "spliced",
]

log = structlog.get_logger("gateway.pipeline")


class Filter(Protocol):
    """Marker protocol: a filter has a ``name`` and any of the phase methods above."""

    name: str


@dataclass(frozen=True)
class FilterContext:
    """What a filter may use besides its own options."""

    settings: Any  # gateway.settings.Settings (Any here to avoid an import cycle)
    store: Any  # gateway.store.Store


class Pipeline:
    def __init__(self, filters: Sequence[Filter]) -> None:
        self.filters = list(filters)

    async def on_mail(self, tx: Transaction) -> None:
        for f in self.filters:
            hook = getattr(f, "on_mail", None)
            if hook is not None:
                await _guard(f, hook(tx), tx)

    async def on_rcpt(self, tx: Transaction, address: str) -> None:
        for f in self.filters:
            hook = getattr(f, "on_rcpt", None)
            if hook is not None:
                await _guard(f, hook(tx, address), tx)

    async def on_data(self, tx: Transaction, content: Content) -> Content:
        """The message after every filter. Each filter's input is let go once its output
        is in, so a caller that keeps no reference of its own (``taken.pop()`` as the
        argument) does not hold a large message once more for the whole chain. Splices
        are made in ``content`` itself when it is a ``bytearray`` (the handler's, as
        received); given bytes, they are made in a copy.

        ``content`` is CRLF-clean (the handler refuses anything else), and what each filter
        returns is held to the same rule where it differs from what it was given (MIME-7):
        a bare CR, bare LF or NUL made by a filter is a fault (451), never queued."""
        for f in self.filters:
            hook = getattr(f, "on_data", None)
            if hook is None:
                continue
            result = await _guard(f, hook(tx, content), tx)
            if isinstance(result, Splices):
                if result.edits:
                    content = spliced(f.name, tx, content, result)
                continue
            if result is content:
                continue
            if not isinstance(result, bytes | bytearray):
                log.error("filter_bad_result", filter=f.name, queue_id=tx.queue_id)
                raise TempFailure("Local policy check failed; try again later")
            if not edit_is_clean(content, result):
                log.error("unclean_output", filter=f.name, queue_id=tx.queue_id)
                raise TempFailure("Local policy check failed; try again later")
            content = result
        return content


def spliced(name: str, tx: Transaction, content: Content, splices: Splices) -> bytearray:
    """``content`` with ``splices`` made (in it when it is a bytearray), each edit checked
    as a filter's output is (MIME-7); TempFailure if they cannot be made or are unclean.
    ``name`` (a filter's) is for the log."""
    buf = content if isinstance(content, bytearray) else bytearray(content)
    try:
        written = splices.apply_in_place(buf)
    except (ValueError, BufferError) as exc:
        # Overlapping edits, or a view of the message still open: a bug, never a pass.
        log.error("filter_bad_result", filter=name, queue_id=tx.queue_id, error=str(exc))
        raise TempFailure("Local policy check failed; try again later") from exc
    if not all(span_is_clean(buf, start, end) for start, end in written):
        log.error("unclean_output", filter=name, queue_id=tx.queue_id)
        raise TempFailure("Local policy check failed; try again later")
    return buf


async def _guard(f: Filter, awaitable: Any, tx: Transaction) -> Any:
    try:
        return await awaitable
    except (Refused, TempFailure):
        raise
    except Exception as exc:
        # Fail closed: a crashed check must never let mail through.
        log.exception(
            "filter_crashed", filter=f.name, queue_id=tx.queue_id, error=type(exc).__name__
        )
        raise TempFailure("Local policy check failed; try again later") from exc


def checked_options(
    context: FilterContext, name: str, options: dict[str, Any], known: Sequence[str]
) -> str:
    """``FILE: filter.NAME``, the prefix of the filter's config errors, once every option in
    ``options`` is one of ``known``."""
    where = f"{getattr(context.settings, 'source', 'config')}: filter.{name}"
    for key in options:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown option")
    return where


def load_filters(
    names: Sequence[str], options: Mapping[str, Mapping[str, Any]], context: FilterContext
) -> list[Filter]:
    """Import ``filters.NAME`` for each configured name and build it with its options."""
    built: list[Filter] = []
    for name in names:
        try:
            module = importlib.import_module(f"filters.{name}")
        except ModuleNotFoundError as exc:
            raise ConfigError(f"pipeline.filters: no filter named {name!r}") from exc
        try:
            built.append(module.create(dict(options.get(name, {})), context))
        except TypeError as exc:
            raise ConfigError(f"filter.{name}: {exc}") from exc
    return built
