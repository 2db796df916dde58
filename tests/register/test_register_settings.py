"""The [register] settings section: defaults, paths, checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.subprocess_gateway import run_cli

from gateway.errors import ConfigError
from gateway.settings import Settings, _build
from gateway.settings.register import RegisterSettings, register_settings


def test_defaults_resolve_against_the_config_folder(tmp_path: Path) -> None:
    rs = register_settings(Settings(source=tmp_path / "gateway.toml"))
    assert rs.key_file == tmp_path / "keys" / "register.key"
    assert rs.mac_key_file == tmp_path / "keys" / "register-mac.key"
    assert rs.checkpoint_dir == tmp_path / "register-checkpoints"
    assert (rs.retention_days, rs.missing_consent, rs.evolve_mac_key) == (
        1095,
        "accept-incomplete",
        False,
    )


def test_section_loads_through_the_settings_loader(tmp_path: Path) -> None:
    raw = {"missing_consent": "refuse", "retention_days": 30, "key_file": "k/r.key"}
    rs = _build(RegisterSettings, raw, "gateway.toml", "register.", tmp_path)
    assert (rs.missing_consent, rs.retention_days, rs.key_file) == (
        "refuse",
        30,
        tmp_path / "k" / "r.key",
    )
    with pytest.raises(ConfigError, match=r"register\.missing_consent: must be one of"):
        _build(RegisterSettings, {"missing_consent": "no"}, "gateway.toml", "register.", tmp_path)
    with pytest.raises(ConfigError, match=r"register\.retention_days: must be at least 1"):
        RegisterSettings(retention_days=0)
    with pytest.raises(ConfigError, match=r"register\.colour: unknown key"):
        _build(RegisterSettings, {"colour": "red"}, "gateway.toml", "register.", tmp_path)


def test_inform_within_days_defaults_to_14_and_is_checked(tmp_path: Path) -> None:
    assert RegisterSettings().inform_within_days == 14
    rs = _build(RegisterSettings, {"inform_within_days": 0}, "gateway.toml", "register.", tmp_path)
    assert rs.inform_within_days == 0  # due at once
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[upstream]\nhost = "smtp.example"\n[register]\ninform_within_days = -1\n', "utf-8"
    )
    done = run_cli("check-config", "--config", config)
    assert done.returncode == 1  # check-config: 1 is "this config is not valid"
    assert done.stderr.strip().splitlines() == [
        f"c4f-gateway check-config: config error: {config}: register.inform_within_days: "
        "must be 0 (due at once) or more"
    ]
