"""The production layout of deploy/ (examples, units) in a temp root, for deploy tests.

Paths the examples and units name (``/etc/c4f-gateway``, ``/var/lib/c4f-gateway``,
``/opt/c4f-gateway/venv``) are rewritten into a temp root. :class:`ServiceUser` runs
commands as the gateway's user would: when the tests run as root that is ``nobody``
(via ``setpriv``), so a folder the service may not write to really is not writable;
otherwise it is the current user, and "read-only" is a folder without the write bit.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ETC = "/etc/c4f-gateway"
STATE = "/var/lib/c4f-gateway"
VENV = "/opt/c4f-gateway/venv"
NOBODY = 65534


def rewrite(text: str, root: Path, venv: Path) -> str:
    """The production paths in ``text`` moved under ``root`` (and the venv to ``venv``)."""
    return (
        text.replace(VENV, str(venv)).replace(ETC, f"{root}{ETC}").replace(STATE, f"{root}{STATE}")
    )


def unit_lines(unit: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a systemd unit file, by key, in order (comments skipped)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def unit_command(unit: Path, key: str, root: Path, venv: Path) -> list[str]:
    """The one ``ExecStartPre``/``ExecStart`` command line of ``unit``, rewritten."""
    [line] = unit_lines(unit)[key]
    return shlex.split(rewrite(line, root, venv))


class ServiceUser:
    """Who runs the gateway's commands in a test: ``nobody`` under root, else ourselves."""

    def __init__(self) -> None:
        self.root = os.geteuid() == 0
        self.uid = NOBODY if self.root else os.geteuid()
        self.gid = NOBODY if self.root else os.getegid()

    def prefix(self) -> list[str]:
        if not self.root:
            return []
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--",
        ]

    def own(self, path: Path) -> None:
        """``path`` and everything in it belongs to the service user."""
        if not self.root:
            return
        for p in [path, *path.rglob("*")]:
            os.lchown(p, self.uid, self.gid)

    def read_only(self, path: Path) -> None:
        """The service user may read (and enter) ``path`` but not write to it."""
        mode = 0o755 if path.is_dir() else 0o644
        if self.root:
            os.chown(path, 0, 0)
            path.chmod(mode)
        else:
            path.chmod(mode & 0o555)

    def run(
        self, cmd: list[str], *, cwd: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix(), *cmd],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=cwd,
            env=_env(),
        )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@contextmanager
def temp_root() -> Iterator[Path]:
    """A folder every user can enter (pytest's own tmp_path is private to its owner)."""
    root = Path(tempfile.mkdtemp(prefix="c4f-deploy-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        for p in [root, *root.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
        shutil.rmtree(root)


def without_review_due(stderr: str) -> str:
    """``stderr`` without check-config's "policy review overdue" warning: the shipped
    configs carry the review date of their release, so a year on they warn, as they
    should, and a test of something else must not start failing with the calendar."""
    return "".join(
        line
        for line in stderr.splitlines(keepends=True)
        if "policy.reviewed_on: the policy (version" not in line
    )
