"""What a release is made of: its version, its locked dependencies, its shipped data.

The built wheel itself is installed and run in ``test_wheel_install.py``.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from support.subprocess_gateway import run_cli

from filters.fax_route import DEFAULT_PROVIDERS_FILE
from gateway.mail.disclaimer_notice import DEFAULT_FILE

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SHIPPED = REPO / "gateway" / "shipped"
# The first releases with the known security fixes: the floors must not fall below them.
SECURITY_FLOORS = {"dnspython": "2.6.1", "cryptography": "42.0.4", "python-multipart": "0.0.30"}


def locked() -> dict[str, Version]:
    """``name -> version`` from requirements.lock (pip-compile's ``name==version`` lines)."""
    pins: dict[str, Version] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            name, _, version = line.split(" ")[0].partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def declared() -> list[Requirement]:
    deps = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]
    return [Requirement(d) for d in deps]


def test_version_prints_the_installed_distribution() -> None:
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"c4f-gateway {importlib.metadata.version('c4f-gateway')}\n"
    assert done.stdout == f"c4f-gateway {PROJECT['version']}\n"
    assert "--version" in run_cli("--help").stdout


def test_security_floors_are_in_pyproject() -> None:
    by_name = {canonicalize_name(r.name): r for r in declared()}
    for name, fixed in SECURITY_FLOORS.items():
        floors = [Version(s.version) for s in by_name[name].specifier if s.operator == ">="]
        assert floors and max(floors) >= Version(fixed), f"{name}: floor below {fixed}"


def test_lock_pins_every_dependency_within_what_pyproject_allows() -> None:
    """A dependency added to pyproject.toml without refreshing the lock fails here."""
    pins = locked()
    missing = [r.name for r in declared() if canonicalize_name(r.name) not in pins]
    assert missing == [], f"refresh requirements.lock (see the README): {missing} not pinned"
    outside = {
        r.name: str(pins[canonicalize_name(r.name)])
        for r in declared()
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    }
    assert outside == {}, f"requirements.lock pins versions pyproject.toml excludes: {outside}"


def test_lock_is_what_this_venv_runs() -> None:
    """`make venv` installs with the lock as constraints: the suite runs the pinned versions."""
    pins = locked()
    drift = {}
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            continue  # the test above names it
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed == "not installed" or Version(installed) != pins[name]:
            drift[name] = (str(pins[name]), installed)
    assert drift == {}, f"run `make venv`: installed versions differ from the lock: {drift}"


def test_shipped_files_are_package_data_and_exist_once() -> None:
    assert Path(str(DEFAULT_FILE)) == SHIPPED / "disclaimer.txt"
    assert Path(str(DEFAULT_PROVIDERS_FILE)) == SHIPPED / "fax-providers.txt"
    assert DEFAULT_FILE.read_text(encoding="utf-8").startswith("This document is strictly")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "gateway.shipped" in setuptools["packages"]
    assert "*.txt" in setuptools["package-data"]["gateway.shipped"]
    # One copy only: the config folder holds config files, not a second notice.
    for shipped in SHIPPED.iterdir():
        data = shipped.read_bytes()
        copies = [
            p
            for top in ("config", "deploy", "gateway", "filters")
            for p in (REPO / top).rglob("*")
            if p.is_file() and p.stat().st_size == len(data) and p.read_bytes() == data
        ]
        assert copies == [shipped], copies


def test_container_and_make_venv_install_with_the_lock() -> None:
    containerfile = (REPO / "deploy" / "Containerfile").read_text()
    # Every file the image copies exists where the build context (the checkout) has it.
    for line in containerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for source in sources:
                assert (REPO / source).exists(), f"deploy/Containerfile: COPY {source}"
    installs = [ln for ln in containerfile.splitlines() if "pip install" in ln]
    assert installs and all("-c requirements.lock" in ln for ln in installs), installs
    makefile = (REPO / "Makefile").read_text()
    assert "$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'" in makefile
    assert "$(VENV)/.installed: pyproject.toml requirements.lock" in makefile
