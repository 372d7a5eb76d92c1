"""Settings section `[api]`, read only through fleetwatch.settings."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ApiSettings(BaseModel):
    """The REST API server: where it listens, how much it accepts, how fast a token may ingest."""

    model_config = {"extra": "forbid"}

    host: str = Field("127.0.0.1", description="bind address of `fleetwatch api`")
    port: int = Field(8000, ge=1, le=65535, description="port of `fleetwatch api`")
    max_request_bytes: int = Field(
        16 * 2**20,
        ge=1024,
        description="largest request body accepted, in bytes; applies to the body as sent and, "
        "for gzip bodies, again after decompression (413 beyond it)",
    )
    ingest_rate_samples_per_s: float = Field(
        200_000.0, gt=0, description="sustained ingest rate allowed per token, samples per second"
    )
    ingest_burst_samples: int = Field(
        1_000_000,
        ge=1,
        description="token-bucket size per token: samples accepted at once after a quiet spell",
    )
    max_errors_reported: int = Field(
        100,
        ge=1,
        le=10_000,
        description="per-sample errors listed in an ingest answer (total is always given)",
    )
    auto_step_max_points: int = Field(
        2000,
        ge=10,
        le=100_000,
        description="a range query without `step` whose range would hold more points per series "
        "than this is downsampled automatically",
    )
    raw_interval_s: float = Field(
        60.0,
        gt=0,
        description="assumed spacing of raw samples, used to estimate points per series when "
        "choosing an automatic step",
    )
    log_level: str = Field("info", description="uvicorn log level")
