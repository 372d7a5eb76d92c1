"""REST endpoints of analysis results: device health, forecasts, anomalies, deep dives, peers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

import models
from fleetwatch.analysis import limits as lim
from fleetwatch.analysis import service
from fleetwatch.analysis.schemas import (
    AnomalyOut,
    ForecastOut,
    ForecastPathOut,
    HealthOut,
    PeerPoint,
    PeersOut,
)
from fleetwatch.api.deps import Principal, get_db, get_settings, get_store, require_scope
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.fleet import service as fleet
from fleetwatch.fleet.models import Device
from fleetwatch.settings import Settings
from fleetwatch.store import MetricsStore

router = APIRouter(tags=["analysis"])

FORECASTABLE = ("temperature_celsius", "disk_free_bytes", "memory_used_bytes")


def _device(db: Session, device_id: str) -> Device:
    device = fleet.get(db=db, device_id=device_id)
    if device is None:
        raise ApiError(404, f"device {device_id!r} is not registered", code="not_found")
    return device


def _health_out(row: object, device: Device) -> HealthOut:
    return HealthOut(
        device_id=device.id,
        site_id=device.site_id,
        cohort=device.cohort,
        node_name=device.node_name,
        risk_1h=row.risk_1h,  # type: ignore[attr-defined]
        risk_24h=row.risk_24h,  # type: ignore[attr-defined]
        health=row.health,  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
        top_signals=row.top_signals,  # type: ignore[attr-defined]
        computed_at=row.computed_at,  # type: ignore[attr-defined]
    )


@router.get("/health", response_model=list[HealthOut], summary="Health and risk of every device")
def list_health(
    site: str | None = Query(None, max_length=200),
    status: str | None = Query(None, pattern="^(ok|warning|critical)$"),
    limit: int = Query(10_000, ge=1, le=100_000),
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> Response:
    """Devices by descending 24 h risk, each with the signals that explain it.

    The rows are built from the database types directly (no per-row model validation): the
    dashboard asks for 10,000 of them every refresh.
    """
    body = service.list_health(db=db, site=site, status=status, limit=limit)
    for row in body:
        row["top_signals"] = [_signal(s) for s in row["top_signals"]]
        row["computed_at"] = row["computed_at"].isoformat()
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _signal(raw: dict[str, object]) -> dict[str, object]:
    return {
        "signal": raw.get("signal"),
        "contribution": raw.get("contribution"),
        "metric": raw.get("metric"),
        "labels": raw.get("labels") or {},
        "detail": raw.get("detail"),
    }


@router.get(
    "/devices/{device_id}/health",
    response_model=HealthOut,
    responses=error_responses(404),
    summary="Health and risk of one device",
)
def device_health(
    device_id: str,
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> HealthOut:
    device = _device(db, device_id)
    row = service.get_health(db=db, device_id=device_id)
    if row is None:
        raise ApiError(404, f"no analysis result for {device_id!r} yet", code="not_found")
    return _health_out(row, device)


@router.get(
    "/devices/{device_id}/forecasts",
    response_model=list[ForecastOut],
    responses=error_responses(404),
    summary="Limits this device is forecast to cross",
)
def device_forecasts(
    device_id: str,
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> list[ForecastOut]:
    _device(db, device_id)
    return [
        ForecastOut.model_validate(f) for f in service.device_forecasts(db=db, device_id=device_id)
    ]


@router.get(
    "/devices/{device_id}/anomalies",
    response_model=list[AnomalyOut],
    responses=error_responses(404),
    summary="Anomaly episodes of a device",
)
def device_anomalies(
    device_id: str,
    since: datetime | None = Query(None, description="episodes still open or ended after this"),
    open_only: bool = Query(False),
    db: Session = Depends(get_db, scope="function"),
    _: Principal = Depends(require_scope("read")),
) -> list[AnomalyOut]:
    _device(db, device_id)
    rows = service.device_anomalies(db=db, device_id=device_id, since=since, open_only=open_only)
    return [AnomalyOut.model_validate(r) for r in rows]


@router.get(
    "/devices/{device_id}/forecast-path",
    response_model=ForecastPathOut,
    responses=error_responses(404, 422),
    summary="Deep-dive forecast of one series with its interval band",
)
def forecast_path(
    device_id: str,
    metric: str = Query(
        ..., pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", examples=["temperature_celsius"]
    ),
    sensor: str | None = Query(None, max_length=200),
    disk: str | None = Query(None, max_length=200),
    module: str | None = Query(None, max_length=200),
    hours: float = Query(6.0, gt=0.1, le=168),
    horizon_hours: float = Query(4.0, gt=0, le=72),
    db: Session = Depends(get_db, scope="function"),
    store: MetricsStore = Depends(get_store),
    settings: Settings = Depends(get_settings),
    _: Principal = Depends(require_scope("read")),
) -> ForecastPathOut:
    """statsmodels' damped-trend exponential smoothing fitted to this one series on demand."""
    _device(db, device_id)
    labels = {k: v for k, v in {"sensor": sensor, "disk": disk, "module": module}.items() if v}
    end = datetime.now(tz=UTC)
    history = _history(store, device_id, metric, labels, end, hours, settings.analysis.step_s)
    if history is None:
        raise ApiError(
            404,
            f"no data for {metric} {labels} on {device_id!r} in the last {hours} h",
            code="not_found",
        )
    series_labels, values = history
    limit = _limit(
        store, settings, device_id, metric, series_labels, float(values.dropna().iloc[-1])
    )
    horizon = max(1, int(horizon_hours * 3600 / settings.analysis.step_s))
    deep = models.forecast_deep_dive(
        values,
        None if limit is None else limit.value,
        horizon_points=horizon,
        rising=True if limit is None else limit.rising,
    )
    ttt = deep.time_to_threshold_seconds
    return ForecastPathOut(
        metric=metric,
        labels=series_labels,
        history_times=[t.to_pydatetime() for t in values.index],
        history=[None if not math.isfinite(v) else float(v) for v in values],
        times=[t.to_pydatetime() for t in deep.mean.index],
        mean=[float(v) for v in deep.mean],
        lower=[float(v) for v in deep.lower],
        upper=[float(v) for v in deep.upper],
        limit=None if limit is None else limit.value,
        limit_name=None if limit is None else limit.name,
        time_to_threshold_s=ttt if math.isfinite(ttt) else None,
    )


def _history(
    store: MetricsStore,
    device_id: str,
    metric: str,
    labels: dict[str, str],
    end: datetime,
    hours: float,
    step_s: float,
) -> tuple[dict[str, str], pd.Series] | None:
    df = store.query_range(
        metric=metric,
        device=device_id,
        labels=labels or None,
        start=end - timedelta(hours=hours),
        end=end,
        step_s=step_s,
        agg="mean",
    )
    if df.empty or len(df) < 10:
        return None
    label_cols = [c for c in df.columns if c not in ("time", "value")]
    first = df[label_cols].iloc[0]
    same = (df[label_cols] == first).all(axis=1)
    df = df[same]
    index = pd.date_range(
        df["time"].iloc[0], df["time"].iloc[-1], freq=pd.Timedelta(seconds=step_s)
    )
    values = df.set_index("time")["value"].reindex(index)
    return {str(k): v for k, v in first.items() if isinstance(v, str)}, values


def _limit(
    store: MetricsStore,
    settings: Settings,
    device_id: str,
    metric: str,
    labels: dict[str, str],
    level: float,
) -> lim.Limit | None:
    if metric not in FORECASTABLE:
        return None
    trips = lim.trip_points(store.latest(metric="thermal_trip_point_celsius", device=device_id))
    disks = lim.totals(
        store.latest(metric="disk_total_bytes", device=device_id), ("device", "disk")
    )
    memory = store.latest(metric="memory_total_bytes", device=device_id)
    return lim.limit_for(
        metric,
        labels,
        level,
        trips=trips,
        disk_totals=disks,
        memory_totals=lim.totals(memory, ("device", "module")),
        disk_full_ratio=settings.analysis.disk_full_ratio,
        memory_limit_ratio=settings.analysis.memory_limit_ratio,
    )


@router.get(
    "/devices/{device_id}/peers",
    response_model=PeersOut,
    responses=error_responses(404),
    summary="The same series on every device of this device's cohort",
)
def peers(
    device_id: str,
    metric: str = Query(
        ..., pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", examples=["temperature_celsius"]
    ),
    sensor: str | None = Query(None, max_length=200),
    db: Session = Depends(get_db, scope="function"),
    store: MetricsStore = Depends(get_store),
    _: Principal = Depends(require_scope("read")),
) -> PeersOut:
    device = _device(db, device_id)
    siblings, _total = fleet.list_devices(
        db=db,
        site=device.site_id,
        hardware_model=device.hardware_model,
        firmware=device.firmware,
        limit=1000,
    )
    wanted = {d.id for d in siblings}
    labels = {"sensor": sensor} if sensor else None
    df = store.latest(metric=metric, labels=labels)
    points: list[PeerPoint] = []
    if not df.empty:
        df = df[df["device"].isin(wanted)]
        for record in df.to_dict("records"):
            value = float(record["value"])
            if np.isfinite(value):
                points.append(
                    PeerPoint(device_id=str(record["device"]), value=value, time=record["time"])
                )
    return PeersOut(cohort=device.cohort, metric=metric, labels=labels or {}, devices=points)
