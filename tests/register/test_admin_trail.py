"""Admin actions from the CLI (staff and contacts changes) land in the disclosure register's
admin trail in the same transaction as the change, so they are tamper-evident too."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.register.ledger import Register
from gateway.settings import load
from gateway.store import Store


def _admin_entries(config: Path) -> list[dict[str, object]]:
    settings = load(config)
    store = Store(settings.storage.database)
    try:
        register = Register.from_settings(store, settings.register)
        assert register.verify().ok
        return [e.data for e in register.entries() if e.kind == "admin"]
    finally:
        store.close()


def test_staff_and_contact_changes_are_in_the_register(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--dir", str(tmp_path / "gw")]) == 0
    config = str(tmp_path / "gw" / "gateway.toml")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    assert (
        main(
            [
                "staff",
                "add",
                "--config",
                config,
                "--password-stdin",
                "--role",
                "manager",
                "lm@c4f.example",
            ]
        )
        == 0
    )
    assert main(["staff", "role", "--config", config, "lm@c4f.example", "admin"]) == 0
    assert (
        main(
            [
                "contacts",
                "add",
                "--config",
                config,
                "worker@agency.example",
                "--name",
                "Jo Worker",
                "--org",
                "Agency",
                "--approved-by",
                "lm",
                "--verified",
                "phoned back on a known number",
                "--no-dns",
            ]
        )
        == 0
    )
    capsys.readouterr()
    actions = [(e["action"], e["details"]) for e in _admin_entries(Path(config))]
    names = [a for a, _ in actions]
    assert names[:3] == ["staff add", "staff role", "contact add"]
    assert actions[0][1]["login"] == "lm@c4f.example"  # type: ignore[index]
    assert actions[1][1]["role"] == "admin"  # type: ignore[index]
    assert "a-long-enough-password" not in repr(actions)
