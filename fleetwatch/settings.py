"""The one typed settings object: a TOML file plus ``FLEETWATCH_*`` environment variables.

Precedence (highest first): explicit overrides passed by the CLI, environment variables
(``FLEETWATCH_STORE__BACKEND=influxdb``; ``__`` separates nested sections), the TOML file
(``--config`` or ``FLEETWATCH_CONFIG``), then the embedded defaults, which need no server.

This is the only module that reads the environment (ruff TID251 bans it elsewhere).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleetwatch.actions.config import ActionsSettings
from fleetwatch.agent.config import AgentSettings
from fleetwatch.alerting.config import AlertingSettings
from fleetwatch.analysis.config import AnalysisSettings
from fleetwatch.api.config import ApiSettings

_toml_file: ContextVar[Path | None] = ContextVar("fleetwatch_toml_file", default=None)


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the field."""


class StoreSettings(BaseModel):
    """Where metrics live: the embedded SQLite file or an InfluxDB server."""

    model_config = {"extra": "forbid"}

    backend: Literal["sqlite", "influxdb"] = Field(
        "sqlite", description="sqlite (embedded, no server) or influxdb"
    )
    sqlite_path: Path | None = Field(
        None, description="SQLite metrics file; default <data_dir>/metrics.sqlite3"
    )
    influx_url: str = Field("http://127.0.0.1:8086", description="InfluxDB base URL")
    influx_api: Literal["v1", "v2"] = Field(
        "v1", description="write API: v1 (/write) or v2 (/api/v2/write via influxdb-client)"
    )
    influx_database: str = Field("fleetwatch", description="v1 database (and v2 DBRP database)")
    influx_retention_policy: str = Field("raw", description="v1 retention policy for raw data")
    influx_retention: str = Field(
        "30d", description="duration of the raw retention policy, InfluxQL syntax (30d, 4w, INF)"
    )
    influx_bucket: str = Field("fleetwatch", description="v2 bucket")
    influx_org: str = Field("fleetwatch", description="v2 organisation")
    influx_token: SecretStr | None = Field(None, description="v2 token (or v1 'user:password')")
    influx_username: str | None = Field(None, description="v1 user, when auth is on")
    influx_password: SecretStr | None = Field(None, description="v1 password")
    batch_size: int = Field(5000, ge=1, le=100_000, description="points per write request")
    gzip: bool = Field(True, description="gzip write bodies")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per request")
    max_retries: int = Field(4, ge=0, le=20, description="retries of a 5xx/timeout write")
    retry_backoff_s: float = Field(0.2, ge=0, description="first retry delay; doubles per retry")

    @field_validator("influx_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class DatabaseSettings(BaseModel):
    """The state database (devices, alerts, actions, tokens)."""

    model_config = {"extra": "forbid"}

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/state.sqlite3. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    echo: bool = Field(False, description="log SQL statements")

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:// and postgresql:// URLs are supported")
        return v


class CelerySettings(BaseModel):
    """Background work."""

    model_config = {"extra": "forbid"}

    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Redis or AMQP broker URL")
    result_backend: str | None = Field(None, description="result backend URL; default: none")
    embedded: bool = Field(
        False, description="run tasks in-process instead of through the broker (demo, tests)"
    )
    analysis_interval_s: float = Field(60.0, gt=0, description="beat period of the analysis cycle")


class MetricsSettings(BaseModel):
    """Self-monitoring: each long-running process serves Prometheus metrics."""

    model_config = {"extra": "forbid"}

    port: int | None = Field(
        None, ge=0, le=65535, description="port for /metrics of worker/beat/agent; none = off"
    )
    host: str = Field("127.0.0.1", description="bind address for the self-metrics server")


class DashboardSettings(BaseModel):
    model_config = {"extra": "forbid"}

    host: str = Field("127.0.0.1", description="bind address of the dashboard")
    port: int = Field(8050, ge=1, le=65535, description="port of the dashboard")
    api_url: str = Field("http://127.0.0.1:8000", description="REST API the dashboard reads")
    api_token: SecretStr | None = Field(None, description="read/alerts/actions token for the API")
    refresh_s: float = Field(10.0, gt=0, description="auto-refresh period")


class Settings(BaseSettings):
    """All of fleetwatch's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FLEETWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    data_dir: Path = Field(
        Path(".fleetwatch"), description="where embedded databases and buffers live"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    store: StoreSettings = StoreSettings()
    db: DatabaseSettings = DatabaseSettings()
    celery: CelerySettings = CelerySettings()
    metrics: MetricsSettings = MetricsSettings()
    api: ApiSettings = ApiSettings()
    agent: AgentSettings = AgentSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    alerting: AlertingSettings = AlertingSettings()
    actions: ActionsSettings = ActionsSettings()
    dashboard: DashboardSettings = DashboardSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_file.get()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # Derived locations -------------------------------------------------------------------
    @property
    def metrics_sqlite_path(self) -> Path:
        return self.store.sqlite_path or self.data_dir / "metrics.sqlite3"

    @property
    def database_url(self) -> str:
        return self.db.url or f"sqlite:///{self.data_dir / 'state.sqlite3'}"


def config_file_from_env() -> Path | None:
    value = os.environ.get("FLEETWATCH_CONFIG")
    return Path(value) if value else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise :class:`ConfigError` naming every bad field."""
    path = config_file if config_file is not None else config_file_from_env()
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    token = _toml_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    finally:
        _toml_file.reset(token)


def _describe(exc: ValidationError, path: Path | None) -> str:
    origin = f" (from {path} or FLEETWATCH_* environment)" if path else ""
    lines = [f"invalid settings{origin}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"  {field}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
