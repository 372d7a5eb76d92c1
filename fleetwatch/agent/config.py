"""Settings section ``[agent]``, read only through fleetwatch.settings.

An example with every field is in docs/agent.toml.example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

LaneName = Literal["health", "thermal", "bulk"]
DEFAULT_SHARES: dict[LaneName, float] = {"health": 0.5, "thermal": 0.3, "bulk": 0.2}


class CollectorInstance(BaseModel):
    """One collector plugin run on an interval, e.g. the Jetson sysfs reader of one module."""

    model_config = {"extra": "forbid"}

    plugin: str = Field(..., description="collector plugin name (entry point), e.g. jetson")
    name: str | None = Field(None, description="instance name in logs/metrics; default plugin")
    interval_s: float = Field(10.0, gt=0, le=86_400, description="seconds between collections")
    config: dict[str, Any] = Field(
        default_factory=dict, description="the plugin's own settings (its config_model)"
    )
    lane: LaneName | None = Field(
        None, description="put every sample of this instance in one lane; default by metric name"
    )
    device: str | None = Field(None, description="device label for samples that carry none")
    site: str | None = Field(None, description="site label for samples that carry none")

    @property
    def instance_name(self) -> str:
        return self.name or self.plugin


class DeadbandRule(BaseModel):
    """Send a sample only when it moved more than ``tolerance`` since the last sent one, or when
    ``heartbeat_s`` passed. The receiver's step-hold reconstruction is then within ``tolerance``
    of every suppressed sample and never older than ``heartbeat_s``."""

    model_config = {"extra": "forbid"}

    metric: str = Field(..., description="metric name or shell pattern, e.g. power_watts or fan_*")
    tolerance: float = Field(..., ge=0, description="absolute change that is always sent")
    heartbeat_s: float = Field(300.0, gt=0, description="send at least this often per series")


class AgentSettings(BaseModel):
    """The gateway agent: collectors, disk buffer, bandwidth cap and uplink."""

    model_config = {"extra": "forbid"}

    device: str | None = Field(None, description="default device label (e.g. the gateway id)")
    site: str | None = Field(None, description="default site label")
    collectors: list[CollectorInstance] = Field(
        default_factory=list, description="collector instances to run"
    )

    buffer_dir: Path | None = Field(None, description="disk buffer; default <data_dir>/agent")
    buffer_max_bytes: int = Field(
        256 * 2**20, ge=64 * 1024, description="bound of the disk buffer across lanes"
    )
    segment_bytes: int = Field(
        1 * 2**20, ge=4096, le=256 * 2**20, description="size at which a segment file is closed"
    )
    fsync: Literal["batch", "interval", "never"] = Field(
        "batch",
        description="batch: fsync every append (power loss loses nothing appended); interval: "
        "every fsync_interval_s (power loss may lose that much); never: leave it to the OS",
    )
    fsync_interval_s: float = Field(1.0, gt=0, description="fsync period when fsync=interval")

    uplink: Literal["influxdb", "ingest"] = Field(
        "influxdb", description="influxdb (gzip line protocol) or ingest (fleetwatch dense)"
    )
    uplink_url: str = Field("http://127.0.0.1:8086", description="InfluxDB or fleetwatch API URL")
    uplink_token: SecretStr | None = Field(
        None, description="ingest bearer token, InfluxDB v2 token or v1 'user:password'"
    )
    influx_api: Literal["v1", "v2"] = Field("v1", description="InfluxDB write API")
    influx_database: str = Field("fleetwatch", description="v1 database")
    influx_retention_policy: str | None = Field(None, description="v1 retention policy")
    influx_org: str = Field("fleetwatch", description="v2 organisation")
    influx_bucket: str = Field("fleetwatch", description="v2 bucket")
    ingest_path: str = Field("/api/v1/ingest", description="path of the ingest endpoint")
    timeout_s: float = Field(15.0, gt=0, description="HTTP timeout per request")

    batch_max_samples: int = Field(
        10_000, ge=1, le=1_000_000, description="samples per uplink request"
    )
    flush_interval_s: float = Field(
        60.0,
        ge=0,
        description="wait until a lane's oldest sample is this old before sending a partial "
        "batch (longer batches compress better); a full batch goes at once",
    )
    drain_order: Literal["strict", "shared"] = Field(
        "strict",
        description="strict: health, then thermal, then bulk; shared: each request gives every "
        "lane its lane_shares of the batch (unused share goes to the others, in lane order)",
    )
    lane_shares: dict[LaneName, float] = Field(
        default_factory=lambda: dict(DEFAULT_SHARES),
        description="fraction of each request per lane when drain_order is shared",
    )
    bandwidth_bytes_per_s: float | None = Field(
        None, gt=0, description="average uplink bytes/s including HTTP overhead; none = no cap"
    )
    bandwidth_burst_bytes: int | None = Field(
        None,
        ge=1024,
        description="bytes that may go at once above the average; default two seconds' worth "
        "(at least 1024). Over a window of w seconds at most rate*w + burst + one request leave",
    )
    retry_initial_s: float = Field(1.0, gt=0, description="first retry delay")
    retry_max_s: float = Field(120.0, gt=0, description="longest retry delay")

    deadband: list[DeadbandRule] = Field(
        default_factory=list, description="per-metric deadband (off unless listed)"
    )
    quarantine_max_files: int = Field(
        100, ge=0, description="rejected (4xx) batches kept for inspection"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="port of /metrics and /healthz; none = [metrics].port"
    )
    metrics_host: str = Field("127.0.0.1", description="bind address of /metrics and /healthz")

    @field_validator("uplink_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _unique_instances(self) -> AgentSettings:
        names = [c.instance_name for c in self.collectors]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"collector instance names must be unique; give `name` to {dupes}")
        if any(v < 0 for v in self.lane_shares.values()) or sum(self.lane_shares.values()) <= 0:
            raise ValueError("lane_shares must be non-negative and not all zero")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must not be below retry_initial_s")
        return self
