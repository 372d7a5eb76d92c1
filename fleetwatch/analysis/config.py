"""Settings section `[analysis]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel, Field

DEFAULT_METRICS = (
    "temperature_celsius",
    "fan_speed_rpm",
    "power_watts",
    "cpu_utilization_ratio",
    "gpu_utilization_ratio",
    "memory_used_bytes",
    "disk_free_bytes",
    "coral_tpu_clock_hertz",
    "message_queue_length",
    "module_availability_ratio",
    "module_restarts_total",
)


class AnalysisSettings(BaseModel):
    """The analysis cycle: what is scored, on which grid, and how findings become episodes."""

    model_config = {"extra": "forbid"}

    shards: int = Field(4, ge=1, le=4096, description="device shards per cycle (one task each)")
    step_s: float = Field(60.0, gt=0, description="analysis grid: points are averaged per step")
    metrics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METRICS), description="metrics scored for anomalies"
    )
    context_metrics: list[str] = Field(
        default_factory=lambda: ["fan_pwm_ratio"],
        description="metrics read for other signals (fan wear reads rpm per duty), never "
        "scored for anomalies: a controller's output follows what it controls",
    )
    ingest_lag_s: float = Field(
        120.0, ge=0, description="steps younger than this wait for late points"
    )
    backfill_s: float = Field(
        3 * 3600.0, gt=0, description="history read by the first cycle of a shard"
    )
    max_points_per_cycle: int = Field(
        1440, ge=1, description="grid points processed per cycle at most (catch-up in chunks)"
    )
    season_buckets: int = Field(
        24, ge=1, le=288, description="daily profile resolution of the detector (24 = hourly)"
    )
    forecast_window_points: int = Field(
        120, ge=10, le=2000, description="trailing grid points the forecaster looks at"
    )
    anomaly_open: float = Field(0.9, gt=0, le=1, description="score that opens an episode")
    anomaly_close: float = Field(0.3, ge=0, lt=1, description="score below which it closes")
    close_after_points: int = Field(5, ge=1, description="quiet points before an episode closes")
    peer_open: float = Field(0.8, gt=0, le=1, description="peer score that opens an episode")
    forecast_horizon_s: float = Field(
        7 * 86400.0, gt=0, description="crossings further out count as no crossing"
    )
    forecast_confirm_s: float = Field(
        1200.0, ge=0, description="a crossing must be forecast this long before it raises risk"
    )
    forecast_reach: float = Field(
        3.0, gt=0, description="forecasts reach at most this many forecast windows ahead"
    )
    limits_refresh_s: float = Field(
        300.0, ge=0, description="how often trip points and capacities are re-read"
    )
    disk_full_ratio: float = Field(
        0.01, ge=0, lt=1, description="a disk is full when free space falls to this share"
    )
    memory_limit_ratio: float = Field(
        0.95, gt=0, le=1, description="memory is exhausted when use reaches this share"
    )
