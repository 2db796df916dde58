"""The gateway as an operator installs it: a built wheel in a fresh virtualenv.

:func:`build_wheel` copies what the wheel is made from (``pyproject.toml``, ``README.md``,
``gateway/``, ``filters/``) into a scratch folder and builds there with
``pip wheel --no-deps``, so nothing is written into the checkout and two builds never meet.
:func:`install_wheel` makes a new virtualenv outside the checkout and installs the wheel,
its dependencies coming from the index constrained by ``requirements.lock`` (as the
container does). :class:`InstalledGateway` runs that venv's ``c4f-gateway`` with an
environment that cannot reach the checkout.

Tests take the ``installed_gateway`` fixture (import it into the test module): one build
and one venv for the whole run, however many modules use it (about a minute, from pip's
cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
# What the wheel is built from: the rest of the checkout must not be needed.
SOURCES = ("pyproject.toml", "README.md", "gateway", "filters")
# Variables that could make the installed command import the checkout or this venv.
_LEAKY = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE")


def _run(cmd: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=clean_env()
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )


def clean_env() -> dict[str, str]:
    """This process's environment without what would point a Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def build_wheel(dest: Path) -> Path:
    """Build the gateway's wheel into ``dest`` (a scratch copy of the sources is made there)."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, src / name)
    out = dest / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(src)],
        cwd=dest,
        timeout=300,
    )
    [wheel] = out.glob("c4f_gateway-*.whl")
    return wheel


@dataclass(frozen=True)
class InstalledGateway:
    """A venv holding the installed wheel, and the folder its commands run in."""

    wheel: Path
    venv: Path
    home: Path  # a folder outside the checkout: the commands' working directory

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "c4f-gateway"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(
        self,
        *args: str | Path,
        stdin: str | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """``c4f-gateway ARGS...`` from the venv; never raises on a non-zero exit."""
        return subprocess.run(
            [str(self.command), *map(str, args)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd or self.home,
            env=clean_env(),
        )

    def popen(self, *args: str | Path, log: Path) -> subprocess.Popen[bytes]:
        """Start ``c4f-gateway ARGS...`` in the background, stdout and stderr into ``log``."""
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(self.command), *map(str, args)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                env=clean_env(),
            )


def install_wheel(wheel: Path, folder: Path) -> InstalledGateway:
    """A new venv in ``folder/venv`` with ``wheel`` and its locked dependencies."""
    venv = folder / "venv"
    home = folder / "home"
    home.mkdir(parents=True)
    _run([sys.executable, "-m", "venv", str(venv)], cwd=folder, timeout=120)
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(LOCK),
            str(wheel),
        ],
        cwd=home,
        timeout=600,
    )
    return InstalledGateway(wheel=wheel, venv=venv, home=home)


_INSTALLED: list[InstalledGateway] = []


@pytest.fixture(scope="session")
def installed_gateway(tmp_path_factory: pytest.TempPathFactory) -> InstalledGateway:
    """The wheel built from this checkout, installed in a fresh venv (once per run)."""
    if not _INSTALLED:
        root = tmp_path_factory.mktemp("wheel-install")
        wheel = build_wheel(root / "build")
        _INSTALLED.append(install_wheel(wheel, root / "installed"))
    return _INSTALLED[0]
