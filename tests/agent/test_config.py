"""The [agent] section: loaded from TOML, bad fields named at start-up, by the CLI too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fleetwatch.settings import ConfigError, load_settings
from tests.agent.conftest import FLEETWATCH_BIN, REPO


def test_the_documented_example_loads() -> None:
    conf = load_settings(REPO / "docs" / "agent.toml.example").agent
    assert conf.uplink == "ingest" and conf.bandwidth_bytes_per_s == 2000.0
    assert [c.instance_name for c in conf.collectors] == [
        "jetson-local",
        "iotedge",
        "greengrass",
        "spool",
    ]
    assert conf.collectors[2].lane == "health"
    assert conf.uplink_token is not None and "fw_ingest" not in repr(conf)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[agent]\nbandwidth_bytes_per_s = -5\n", "agent.bandwidth_bytes_per_s"),
        ("[agent]\nuplink = 'carrier-pigeon'\n", "agent.uplink"),
        ("[agent]\nbuffer_max_bites = 5\n", "agent.buffer_max_bites"),
        (
            "[[agent.collectors]]\nplugin = 'jetson'\ninterval_s = 0\n",
            "agent.collectors.0.interval_s",
        ),
        ("[[agent.collectors]]\nplugin='spool'\n[[agent.collectors]]\nplugin='spool'\n", "unique"),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, toml: str, field: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_settings(path)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWATCH_BIN), *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_the_cli_fails_at_start_up_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[agent]\nflush_interval_s = 'soon'\n")
    for args in (["agent", "--config", str(path)], ["--config", str(path), "agent"]):
        result = run_cli(*args)
        assert result.returncode == 2
        assert "agent.flush_interval_s" in result.stderr


def test_the_cli_names_an_unknown_plugin_and_a_bad_plugin_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[[agent.collectors]]\nplugin = 'no-such-thing'\n")
    result = run_cli("agent", "--config", str(path))
    assert result.returncode == 2
    assert "agent.collectors[0] (no-such-thing)" in result.stderr
    path.write_text("[[agent.collectors]]\nplugin = 'spool'\nconfig = { directry = '/x' }\n")
    result = run_cli("agent", "--config", str(path))
    assert result.returncode == 2
    assert "config.directory: Field required" in result.stderr
    assert "config.directry" in result.stderr
