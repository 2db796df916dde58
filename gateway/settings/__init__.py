"""One TOML file -> frozen dataclasses.

Unknown keys, wrong types and bad values stop start-up with ``file: key: reason``.
Relative paths are resolved against the config file's folder. Every default lives here or,
for the larger sections, in this package's own modules (``register``, ``web``).

The lowest layer with errors, crypto and store: it imports no wing of the gateway.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from gateway.errors import ConfigError
from gateway.hostport import parse_hostport
from gateway.settings.dns import DnsSettings
from gateway.settings.metrics import MetricsSettings
from gateway.settings.notices import NoticeSettings
from gateway.settings.policy import PolicySettings
from gateway.settings.register import RegisterSettings
from gateway.settings.web import WebSettings

__all__ = ["ConfigError", "Settings", "load", "parse_hostport"]


@dataclass(frozen=True)
class Organisation:
    name: str = "C4F - Child Contact Centre"
    # The centre's own mail domains: staff addresses live here, and mail between them is internal.
    domains: tuple[str, ...] = ("c4f.example",)


@dataclass(frozen=True)
class Listen:
    # 587-style submission: STARTTLS required before AUTH and MAIL.
    starttls: tuple[str, ...] = ("127.0.0.1:1587",)
    # 465-style submission: TLS from the first byte (RFC 8314).
    implicit_tls: tuple[str, ...] = ("127.0.0.1:1465",)


@dataclass(frozen=True)
class TLS:
    cert_file: Path = Path("tls/cert.pem")
    key_file: Path = Path("tls/key.pem")


@dataclass(frozen=True)
class Limits:
    max_message_size: int = 25 * 1024 * 1024
    max_recipients: int = 100  # RFC 5321 4.5.3.1.8: at least 100 must be accepted
    idle_timeout: float = 300.0  # RFC 5321 4.5.3.2: at least 5 minutes
    max_session_age: float = 1800.0
    max_connections: int = 100
    max_connections_per_client: int = 20
    # LIM-7: open connections from one /24 (IPv4) or /64 (IPv6), whatever its addresses.
    max_connections_per_network: int = 50
    # LIM-7: silence allowed before login (at most idle_timeout, which applies after it).
    idle_timeout_before_login: float = 30.0
    max_noops: int = 20  # NOOP/RSET/HELP/VRFY per session before 421
    min_free_space: int = 0  # bytes; 0 means 1.5 x max_message_size


@dataclass(frozen=True)
class Auth:
    max_failures_per_session: int = 3
    max_failures_per_client: int = 5
    max_failures_per_account: int = 10
    lockout_seconds: float = 900.0
    # Staff passwords are hashed with scrypt, N = 2**password_hash_cost, r = 8, p = 1.
    # 17 is OWASP's minimum (128 MiB and about 0.4 s per check); 10 to 20 are accepted,
    # below 17 for test accounts only. An older, cheaper hash is replaced at the next login.
    password_hash_cost: int = 17
    # Seconds a successful login is remembered (a keyed digest, never the password), so the
    # same password again skips scrypt; 0 checks every login (gateway.directory.login_cache).
    cache_ttl: float = 300.0


@dataclass(frozen=True)
class Storage:
    database: Path = Path("gateway.db")
    spool_key_file: Path = Path("keys/spool.key")


@dataclass(frozen=True)
class Delivery:
    transport: Literal["smtp", "maildir"] = "smtp"
    maildir: Path = Path("delivered")
    concurrency: int = 4
    retry_initial: float = 60.0
    retry_max: float = 3600.0
    max_queue_age: float = 5 * 24 * 3600.0
    bounce_includes_body: bool = False
    poll_interval: float = 1.0
    # Seconds a worker holds a message it is delivering (renewed every third of it while
    # the delivery runs): a worker killed with -9 delays its messages at most this long.
    lease: float = 120.0


@dataclass(frozen=True)
class Server:
    # Worker processes of `serve`, sharing the listening sockets under one supervisor
    # (gateway.supervisor); 0 means one per CPU. 1 runs a single process, no supervisor.
    workers: int = 0


@dataclass(frozen=True)
class Upstream:
    host: str = ""
    port: int = 587
    tls: Literal["starttls", "implicit"] = "starttls"
    ca_file: Path | None = None  # None: the system trust store
    credentials_file: Path | None = None  # two lines: user, password (mode 0600)
    timeout: float = 60.0  # connect, greeting, and every reply but the one to the dot
    # The reply to the final dot (RFC 5321 4.5.3.2.6: at least 10 minutes). Giving up
    # earlier risks a second copy: the upstream may have taken the message already.
    final_reply_timeout: float = 600.0
    helo_name: str = ""
    # The name the upstream's certificate must carry; "" means ``host``. It comes from
    # this file, never from DNS (Postfix "secure" semantics, reliability-tests.md TLS-3),
    # so ``host`` may be an IP address or an internal alias while the certificate is
    # checked against the smarthost's public name (e.g. "smtp.office365.com").
    tls_name: str = ""
    # Connections kept between messages (Postfix's connection cache): one that carried a
    # message cleanly waits this many seconds for the next (0: one message per connection)
    # and carries at most pool_max_messages, with RSET before each after the first.
    pool_idle_seconds: float = 10.0
    pool_max_messages: int = 100


@dataclass(frozen=True)
class Pipeline:
    filters: tuple[str, ...] = ("sender",)
    # Development and tests only: run without some of the policy filters (sender,
    # fax_route, contacts, disclosure, approval, disclaimer); otherwise serve refuses.
    allow_partial_pipeline: bool = False


@dataclass(frozen=True)
class Log:
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class Settings:
    hostname: str = "c4f-gateway.localhost"
    server: Server = field(default_factory=Server)
    organisation: Organisation = field(default_factory=Organisation)
    listen: Listen = field(default_factory=Listen)
    tls: TLS = field(default_factory=TLS)
    limits: Limits = field(default_factory=Limits)
    auth: Auth = field(default_factory=Auth)
    storage: Storage = field(default_factory=Storage)
    delivery: Delivery = field(default_factory=Delivery)
    upstream: Upstream = field(default_factory=Upstream)
    pipeline: Pipeline = field(default_factory=Pipeline)
    log: Log = field(default_factory=Log)
    register: RegisterSettings = field(default_factory=RegisterSettings)
    web: WebSettings = field(default_factory=WebSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    notices: NoticeSettings = field(default_factory=NoticeSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    # [filter.NAME] tables: options passed to that filter's create(); checked by the filter.
    filter: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path = Path("gateway.toml")

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    @property
    def notices_from(self) -> str:
        """The address the gateway's own notices and bounces come from ([notices] from)."""
        return self.notices.sender(self.organisation.domains)


def load(path: Path) -> Settings:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    settings: Settings = _build(Settings, raw, str(path), "", path.resolve().parent)
    settings = dataclasses.replace(settings, source=path.resolve())
    _check(settings, str(path))
    return settings


def _build(cls: type[Any], raw: Any, file: str, prefix: str, base: Path) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: {prefix.rstrip('.') or '(top)'}: expected a table")
    hints = get_type_hints(cls)
    # A field whose TOML key is a Python keyword names the key in its metadata ("from").
    names = {
        f.metadata.get("toml_key", f.name): f.name
        for f in dataclasses.fields(cls)
        if f.name != "source"
    }
    for key in raw:
        if key not in names:
            raise ConfigError(f"{file}: {prefix}{key}: unknown key")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        values[names[key]] = _convert(hints[names[key]], value, file, f"{prefix}{key}", base)
    try:
        built = cls(**values)
    except ConfigError as exc:  # a section's own checks (__post_init__) name only the key
        raise ConfigError(f"{file}: {exc}") from exc
    return _resolve(built, base)


def _resolve(obj: Any, base: Path) -> Any:
    """Make every relative default path absolute, in this section and the ones below it."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        current = getattr(obj, f.name)
        if f.name == "source":
            continue
        if isinstance(current, Path) and not current.is_absolute():
            changes[f.name] = base / current
        elif dataclasses.is_dataclass(current) and not isinstance(current, type):
            changes[f.name] = _resolve(current, base)
    return dataclasses.replace(obj, **changes)


def _convert(tp: Any, value: Any, file: str, key: str, base: Path) -> Any:
    origin = get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, file, key + ".", base)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value == "" and type(None) in get_args(tp):
            return None
        return _convert(args[0], value, file, key, base)
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{file}: {key}: must be one of {allowed}, not {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{file}: {key}: expected a list")
        return tuple(_convert(get_args(tp)[0], v, file, key, base) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: {key}: expected a table")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{file}: {key}: expected a path")
        p = Path(value)
        return p if p.is_absolute() else base / p
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{file}: {key}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{file}: {key}: expected a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{file}: {key}: expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{file}: {key}: expected a string")
        return value
    raise ConfigError(f"{file}: {key}: unsupported setting type")  # pragma: no cover


def _check(s: Settings, file: str) -> None:
    positive = {
        "limits.max_message_size": s.limits.max_message_size,
        "limits.max_recipients": s.limits.max_recipients,
        "limits.idle_timeout": s.limits.idle_timeout,
        "limits.max_session_age": s.limits.max_session_age,
        "limits.max_connections": s.limits.max_connections,
        "limits.max_connections_per_client": s.limits.max_connections_per_client,
        "limits.max_connections_per_network": s.limits.max_connections_per_network,
        "limits.idle_timeout_before_login": s.limits.idle_timeout_before_login,
        "limits.max_noops": s.limits.max_noops,
        "auth.max_failures_per_session": s.auth.max_failures_per_session,
        "auth.max_failures_per_client": s.auth.max_failures_per_client,
        "auth.max_failures_per_account": s.auth.max_failures_per_account,
        "delivery.concurrency": s.delivery.concurrency,
        "delivery.retry_initial": s.delivery.retry_initial,
        "delivery.retry_max": s.delivery.retry_max,
        "delivery.max_queue_age": s.delivery.max_queue_age,
        "delivery.poll_interval": s.delivery.poll_interval,
        "delivery.lease": s.delivery.lease,
        "upstream.timeout": s.upstream.timeout,
        "upstream.final_reply_timeout": s.upstream.final_reply_timeout,
        "upstream.pool_max_messages": s.upstream.pool_max_messages,
    }
    for key, v in positive.items():
        if v <= 0:
            raise ConfigError(f"{file}: {key}: must be greater than zero")
    if s.limits.max_connections_per_network < s.limits.max_connections_per_client:
        # A network holds at least one address: a lower limit would silently replace it.
        raise ConfigError(
            f"{file}: limits.max_connections_per_network: must be at least "
            "max_connections_per_client"
        )
    if not 0 <= s.server.workers <= 64:
        raise ConfigError(f"{file}: server.workers: must be from 0 (one per CPU) to 64")
    if not 10 <= s.auth.password_hash_cost <= 20:
        raise ConfigError(f"{file}: auth.password_hash_cost: must be from 10 to 20 (17 or more)")
    if s.auth.cache_ttl < 0:
        raise ConfigError(f"{file}: auth.cache_ttl: must be zero (off) or more")
    if s.upstream.pool_idle_seconds < 0:
        raise ConfigError(f"{file}: upstream.pool_idle_seconds: must be zero (off) or more")
    if s.auth.max_failures_per_account > 100:
        # NIST SP 800-63B 5.2.2: at most 100 consecutive failed attempts per account.
        raise ConfigError(f"{file}: auth.max_failures_per_account: must be at most 100")
    for key, addrs in (
        ("listen.starttls", s.listen.starttls),
        ("listen.implicit_tls", s.listen.implicit_tls),
    ):
        for a in addrs:
            parse_hostport(a, f"{file}: {key}")
    if not s.listen.starttls and not s.listen.implicit_tls:
        raise ConfigError(f"{file}: listen: no listener configured")
    if s.delivery.transport == "smtp" and not s.upstream.host:
        raise ConfigError(f"{file}: upstream.host: required when delivery.transport = 'smtp'")
    if not s.organisation.domains:
        raise ConfigError(f"{file}: organisation.domains: name at least one domain")
    if "sender" not in s.pipeline.filters:
        raise ConfigError(f"{file}: pipeline.filters: 'sender' is mandatory")
    for name in s.filter:
        if name not in s.pipeline.filters:
            raise ConfigError(f"{file}: filter.{name}: not listed in pipeline.filters")
