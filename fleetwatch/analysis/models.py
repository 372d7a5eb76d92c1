"""ORM models of analysis results: device health, forecasts, anomaly episodes, detector state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleetwatch.db import Base, UTCDateTime, utcnow


class DeviceHealth(Base):
    """The latest health/risk of a device, with the signals that explain it."""

    __tablename__ = "device_health"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    risk_1h: Mapped[float] = mapped_column(Float, default=0.0)  # P(failure within 1 h), 0..1
    risk_24h: Mapped[float] = mapped_column(Float, default=0.0)
    health: Mapped[float] = mapped_column(Float, default=1.0)  # 1 - risk_24h, for display
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | warning | critical
    # [{"signal": "forecast", "metric": ..., "labels": {...}, "contribution": 0.7,
    #   "detail": "tj reaches 94.8 °C trip point in ~42 min"}], largest first
    top_signals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Forecast(Base):
    """The latest time-to-threshold forecast of one series against one limit."""

    __tablename__ = "forecasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    series_key: Mapped[str] = mapped_column(String(1000))  # canonical "metric{k=v,...}"
    limit_name: Mapped[str] = mapped_column(String(100))  # e.g. trip_point_0, disk_capacity
    limit_value: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    will_cross: Mapped[bool] = mapped_column(Boolean, default=False)
    time_to_threshold_s: Mapped[float | None] = mapped_column(Float)  # None: no crossing expected
    lower_s: Mapped[float | None] = mapped_column(Float)
    upper_s: Mapped[float | None] = mapped_column(Float)
    crossing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_value: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(50), default="damped_trend")

    __table_args__ = (
        Index("uq_forecasts_series_limit", "device_id", "series_key", "limit_name", unique=True),
    )


class AnomalyEpisode(Base):
    """A stretch of time in which a series (or a device against its peers) looked anomalous."""

    __tablename__ = "anomaly_episodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    series_key: Mapped[str] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(50))  # anomaly | peer
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None while open
    peak_score: Mapped[float] = mapped_column(Float, default=0.0)
    last_score: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        Index("ix_anomaly_episodes_device", "device_id", "started_at"),
        Index("ix_anomaly_episodes_open", "series_key", "kind", "ended_at"),
    )


class DetectorState(Base):
    """Detector state carried between analysis cycles, per shard, so a worker resumes."""

    __tablename__ = "detector_state"

    shard: Mapped[str] = mapped_column(String(200), primary_key=True)
    cycle_id: Mapped[str] = mapped_column(String(100))  # last cycle that committed this shard
    processed_until_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[bytes] = mapped_column(LargeBinary)  # serialised numpy arrays (npz)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AnalysisRun(Base):
    """One shard of one cycle, committed with its results: a redelivered task finds it done."""

    __tablename__ = "analysis_runs"

    cycle_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    shard: Mapped[str] = mapped_column(String(200), primary_key=True)
    worker: Mapped[str] = mapped_column(String(200), default="")
    series: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
