"""The packages are named ``gateway`` and ``filters``: generic names another installed
distribution could also use. These tests make sure the code that runs is this
repository's, and that a built package would contain all of it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import filters
import gateway
from filters.approval import ApprovalPolicy, policy_from
from gateway.cli.init import DEV_CONFIG
from gateway.pipeline import FilterContext, load_filters
from gateway.register.ledger import Register
from gateway.settings import Settings, load
from gateway.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_imported_packages_are_this_repository() -> None:
    assert Path(gateway.__file__).resolve() == REPO / "gateway" / "__init__.py"
    assert Path(filters.__file__).resolve() == REPO / "filters" / "__init__.py"


def test_packages_resolve_to_this_repository_from_anywhere(tmp_path: Path) -> None:
    """From another folder (no repo on sys.path by accident), as the installed command runs."""
    probe = (
        "import json, gateway, gateway.cli, filters, filters.sender\n"
        "print(json.dumps([m.__file__ for m in (gateway, gateway.cli, filters, filters.sender)]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    for path in json.loads(done.stdout):
        assert Path(path).resolve().is_relative_to(REPO), path


def test_console_script_is_installed_from_this_distribution() -> None:
    dist = importlib.metadata.distribution("c4f-gateway")
    [script] = [ep for ep in dist.entry_points if ep.group == "console_scripts"]
    assert (script.name, script.value) == ("c4f-gateway", "gateway.cli:main")


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """setuptools installs only what ``packages`` lists: a new subpackage must be added."""
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("gateway", "filters")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject.toml [tool.setuptools] packages: {found - listed}"


# -- the shipped config files cannot rot ---------------------------------------------------

EXAMPLE = REPO / "config" / "gateway.example.toml"
OFFICE365 = REPO / "deploy" / "examples" / "office365.toml"
# Set on purpose to something other than the default in the example (the default is shown
# in the comment above each): a smarthost name (default: none) and the whole pipeline.
NOT_DEFAULT_IN_EXAMPLE = {"upstream.host", "pipeline.filters"}


def settings_defaults(cls: type[Any] = Settings, prefix: str = "") -> dict[str, Any]:
    """Every setting as ``section.key`` -> its default, written as TOML would hold it."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in ("source", "filter"):
            continue
        hint = typing.get_type_hints(cls)[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            out.update(settings_defaults(hint, f"{prefix}{f.name}."))
            continue
        key = f.metadata.get("toml_key", f.name)  # [notices] from: the field is from_
        value = f.default
        assert value is not dataclasses.MISSING, f"{prefix}{f.name}: give it a plain default"
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif value is None:
            value = ""  # how the TOML says "none" for an optional path
        out[f"{prefix}{key}"] = value
    return out


def toml_values(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and key != "filter":
            out.update(toml_values(value, f"{prefix}{key}."))
        elif key != "filter":
            out[f"{prefix}{key}"] = value
    return out


def test_example_config_documents_every_setting_with_its_default() -> None:
    written = toml_values(tomllib.loads(EXAMPLE.read_text()))
    defaults = settings_defaults()
    missing = sorted(set(defaults) - set(written))
    assert missing == [], f"document these in {EXAMPLE.name}: {missing}"
    wrong = {
        key: (written[key], default)
        for key, default in defaults.items()
        if key not in NOT_DEFAULT_IN_EXAMPLE and written[key] != default
    }
    assert wrong == {}, "example value differs from the default in gateway/settings/__init__.py"


def test_example_config_loads_and_its_filters_build(tmp_path: Path) -> None:
    settings = load(EXAMPLE)
    assert settings.pipeline.filters == (
        "sender",
        "fax_route",
        "contacts",
        "disclosure",
        "media",
        "approval",
        "disclaimer",
    )
    assert settings.upstream.ca_file is None and settings.upstream.credentials_file is None
    # The contact filters open the sealed contact list with the register's key, and the
    # disclosure filter reads the register (its MAC key too), as `init` writes them; here
    # they live next to the test's database.
    register = dataclasses.replace(
        settings.register,
        key_file=tmp_path / "register.key",
        mac_key_file=tmp_path / "register-mac.key",
    )
    Register.create_keys(register)
    settings = dataclasses.replace(settings, register=register)
    store = Store(tmp_path / "gateway.db")
    try:
        built = load_filters(
            settings.pipeline.filters,
            settings.filter,
            FilterContext(settings=settings, store=store),
        )
    finally:
        store.close()
    assert [f.name for f in built] == list(settings.pipeline.filters)


def test_example_config_documents_every_approval_option_with_its_default() -> None:
    written = tomllib.loads(EXAMPLE.read_text())["filter"]["approval"]
    assert set(written) == {f.name for f in dataclasses.fields(ApprovalPolicy)}
    assert policy_from(written) == ApprovalPolicy()


def test_shipped_configs_run_every_policy_filter() -> None:
    full = ("sender", "fax_route", "contacts", "disclosure", "media", "approval", "disclaimer")
    assert load(OFFICE365).pipeline.filters == full
    init_config = tomllib.loads(DEV_CONFIG.format(domain="c4f.example", port=1, implicit_port=2))
    assert tuple(init_config["pipeline"]["filters"]) == full


def test_office365_example_relays_over_starttls_with_credentials_from_a_file() -> None:
    settings = load(OFFICE365)
    up = settings.upstream
    assert (settings.delivery.transport, up.host, up.port, up.tls) == (
        "smtp",
        "smtp.office365.com",
        587,
        "starttls",
    )
    assert up.ca_file is None  # the system trust store verifies Microsoft's certificate
    # The password lives in that file (there is no setting that could hold it here).
    assert up.credentials_file == Path("/etc/c4f-gateway/keys/upstream-credentials")
    assert settings.storage.database.is_relative_to("/var/lib/c4f-gateway")  # ReadWritePaths
    assert "sender" in settings.pipeline.filters
    # Notices come from the relay mailbox: Microsoft 365 relays no other From: without Send As.
    assert settings.notices_from == "relay-account@centre.example"


def test_systemd_unit_is_sandboxed() -> None:
    unit = (REPO / "deploy" / "c4f-gateway.service").read_text()
    lines = {ln.strip() for ln in unit.splitlines() if ln and not ln.startswith("#")}
    for setting in (
        "User=c4f-gateway",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/c4f-gateway",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "UMask=0077",
    ):
        assert setting in lines, setting
    assert any(ln.startswith("ExecStart=") and " serve --config " in ln for ln in lines)
