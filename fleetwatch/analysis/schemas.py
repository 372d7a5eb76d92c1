"""API schemas of analysis results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Signal(BaseModel):
    signal: str = Field(..., description="anomaly, peer, forecast, component_broken, ...")
    contribution: float = Field(..., description="share of the 24 h risk this signal explains")
    metric: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    detail: str | None = Field(
        None, examples=["temperature_celsius/tj reaches trip point 0 (99.0 °C) in about 42 min"]
    )


class HealthOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    site_id: str
    cohort: str
    node_name: str | None = None
    risk_1h: float = Field(
        ..., ge=0, le=1, description="probability-like risk of failure within 1 h"
    )
    risk_24h: float = Field(..., ge=0, le=1)
    health: float = Field(..., ge=0, le=1, description="1 - risk_24h")
    status: str = Field(..., examples=["ok", "warning", "critical"])
    top_signals: list[Signal]
    computed_at: datetime


class ForecastOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    labels: dict[str, str]
    limit_name: str
    limit_value: float
    will_cross: bool
    time_to_threshold_s: float | None = Field(None, description="None: no crossing expected")
    lower_s: float | None = None
    upper_s: float | None = Field(None, description="None: the interval is open-ended")
    crossing_at: datetime | None = None
    current_value: float | None = None
    method: str
    computed_at: datetime


class AnomalyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    labels: dict[str, str]
    kind: str = Field(..., examples=["anomaly", "peer"])
    started_at: datetime
    ended_at: datetime | None = None
    peak_score: float
    last_score: float


class ForecastPathOut(BaseModel):
    """A per-series statsmodels forecast for the device page: history, path and band."""

    metric: str
    labels: dict[str, str]
    history_times: list[datetime]
    history: list[float | None]
    times: list[datetime]
    mean: list[float]
    lower: list[float]
    upper: list[float]
    limit: float | None = None
    limit_name: str | None = None
    time_to_threshold_s: float | None = None
    method: str = "statsmodels damped-trend exponential smoothing"


class PeerPoint(BaseModel):
    device_id: str
    value: float
    time: datetime


class PeersOut(BaseModel):
    cohort: str
    metric: str
    labels: dict[str, Any]
    devices: list[PeerPoint]
