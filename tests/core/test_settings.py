from __future__ import annotations

from pathlib import Path

import pytest

from fleetwatch.settings import ConfigError, load_settings


def test_defaults_are_embedded_and_need_no_server(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.store.backend == "sqlite"
    assert s.metrics_sqlite_path == tmp_path / "metrics.sqlite3"
    assert s.database_url == f"sqlite:///{tmp_path / 'state.sqlite3'}"


def test_toml_file_and_environment_with_nested_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "fleetwatch.toml"
    config.write_text(
        '[store]\nbackend = "influxdb"\ninflux_url = "http://10.0.0.5:8086/"\nbatch_size = 1000\n'
        '[celery]\nbroker_url = "amqp://guest@127.0.0.1//"\n'
    )
    monkeypatch.setenv("FLEETWATCH_STORE__BATCH_SIZE", "2500")
    s = load_settings(config)
    assert s.store.backend == "influxdb"
    assert s.store.influx_url == "http://10.0.0.5:8086"  # trailing slash normalised
    assert s.store.batch_size == 2500  # the environment wins over the file
    assert s.celery.broker_url == "amqp://guest@127.0.0.1//"


def test_bad_value_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[store]\nbatch_size = "lots"\ninflux_url = "ftp://x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    text = str(info.value)
    assert "store.batch_size" in text and "store.influx_url" in text


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("[store]\nbakend = 'sqlite'\n")
    with pytest.raises(ConfigError, match="store.bakend"):
        load_settings(config)


def test_env_typo_in_value_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETWATCH_DB__URL", "mysql://nope")
    with pytest.raises(ConfigError, match="db.url"):
        load_settings()


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[store\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_settings(config)
