"""Metrics read endpoints: series listing, range queries with downsampling, latest values.

Answers are sized for a dashboard: a range query without ``step`` whose range would hold more than
``api.auto_step_max_points`` points per series is downsampled on the server with an automatic step
(``auto_step: true`` and the step used are in the answer). Each series comes back compact: its
labels plus parallel arrays of epoch-millisecond timestamps and values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from fleetwatch.api.deps import (
    Principal,
    get_settings,
    get_store,
    reject_unknown_query_params,
    require_scope,
)
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.settings import Settings
from fleetwatch.store import AGGREGATIONS, Aggregation, MetricsStore, StoreError, StoreUnavailable
from fleetwatch.telemetry import LABEL_NAME_RE, METRIC_NAME_RE

T = TypeVar("T")

router = APIRouter(
    prefix="/metrics", tags=["metrics"], dependencies=[Depends(reject_unknown_query_params)]
)

# A requested step may not produce more points than this per series (as Prometheus' 11,000).
MAX_POINTS_PER_SERIES = 11_000
MAX_SERIES_PER_ANSWER = 500
# Automatic steps are picked from these round values (seconds), then whole hours/days.
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)

_METRIC = Query(
    ...,
    pattern=METRIC_NAME_RE.pattern,
    max_length=200,
    description="metric name",
    examples=["jetson_temperature_celsius"],
)
_DEVICE = Query(None, max_length=200, description="only this device", examples=["jetson-0001"])
LabelFilter = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*=.+$")]
_LABELS = Query(
    None,
    description="extra label filters as key=value, repeatable",
    examples=[["sensor=tj"]],
)


class SeriesId(BaseModel):
    metric: str = Field(..., examples=["jetson_temperature_celsius"])
    labels: dict[str, str] = Field(
        ..., examples=[{"device": "jetson-0001", "site": "plant-a", "sensor": "tj"}]
    )


class SeriesPage(BaseModel):
    items: list[SeriesId]
    total: int = Field(..., ge=0)
    limit: int
    offset: int


class SeriesData(BaseModel):
    """One series: its labels and parallel arrays of timestamps (epoch ms) and values."""

    labels: dict[str, str] = Field(..., examples=[{"device": "jetson-0001", "site": "plant-a"}])
    timestamps: list[int] = Field(..., examples=[[1764806400000, 1764806460000]])
    values: list[float] = Field(..., examples=[[61.5, 62.0]])


class RangeResult(BaseModel):
    metric: str
    start: datetime
    end: datetime
    step_s: float | None = Field(..., description="bucket width; null for raw points")
    agg: Aggregation
    auto_step: bool = Field(
        ..., description="true when the server chose step_s because the range holds too many points"
    )
    points: int = Field(..., ge=0, description="points in the answer, over all series")
    series: list[SeriesData]


class LatestPoint(BaseModel):
    labels: dict[str, str]
    timestamp: int = Field(..., description="epoch ms", examples=[1764806400000])
    value: float = Field(..., examples=[61.5])


class LatestResult(BaseModel):
    metric: str
    series: list[LatestPoint]


def parse_label_filters(items: list[str] | None) -> dict[str, str]:
    """``["sensor=tj", ...]`` as a dict; a malformed item is a 422 naming it."""
    out: dict[str, str] = {}
    for i, item in enumerate(items or []):
        key, sep, value = item.partition("=")
        if not sep or not LABEL_NAME_RE.match(key) or not value:
            raise ApiError(
                422,
                f"label filter {item!r} must read key=value with a valid label name",
                details=[{"loc": ["query", "label", i], "msg": "expected key=value"}],
            )
        out[key] = value
    return out


def auto_step_s(range_s: float, max_points: int) -> float:
    """The smallest round step that keeps ``range_s`` within ``max_points`` buckets."""
    needed = range_s / max_points
    for step in NICE_STEPS_S:
        if step >= needed:
            return float(step)
    day = 86400
    return float(math.ceil(needed / 3600) * 3600 if needed < day else math.ceil(needed / day) * day)


def series_from_frame(df: pd.DataFrame) -> list[SeriesData]:
    """Split a store frame (time, value, one column per label) into compact series."""
    if df.empty:
        return []
    label_cols = [c for c in df.columns if c not in ("time", "value")]
    stamps = df["time"].dt.as_unit("ms").astype("int64")
    out: list[SeriesData] = []
    if not label_cols:
        return [SeriesData(labels={}, timestamps=stamps.tolist(), values=df["value"].tolist())]
    for key, group in df.groupby(label_cols, sort=False, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        labels = {c: str(v) for c, v in zip(label_cols, values, strict=True) if _present(v)}
        out.append(
            SeriesData(
                labels=labels,
                timestamps=stamps.loc[group.index].tolist(),
                values=group["value"].tolist(),
            )
        )
    return out


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _store_call(fn: Callable[..., T], **kwargs: Any) -> T:
    try:
        return fn(**kwargs)
    except StoreUnavailable as exc:
        raise ApiError(503, f"metrics store unavailable: {exc}") from None
    except StoreError as exc:
        raise ApiError(422, str(exc)) from None


@router.get(
    "/series",
    response_model=SeriesPage,
    summary="Series (metric + labels) that match",
    responses=error_responses(503),
)
def list_series(
    metric: str | None = Query(None, pattern=METRIC_NAME_RE.pattern, max_length=200),
    device: str | None = _DEVICE,
    site: str | None = Query(None, max_length=200, examples=["plant-a"]),
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    store: MetricsStore = Depends(get_store),
    _: Principal = Depends(require_scope("read")),
) -> SeriesPage:
    keys = _store_call(store.list_series, metric=metric, device=device, site=site)
    page = [SeriesId(metric=m, labels=dict(labels)) for m, labels in keys[offset : offset + limit]]
    return SeriesPage(items=page, total=len(keys), limit=limit, offset=offset)


@router.get(
    "/range",
    response_model=RangeResult,
    summary="Points of a metric over a time range, downsampled for display",
    responses=error_responses(503),
)
def query_range(
    metric: str = _METRIC,
    device: str | None = _DEVICE,
    label: list[LabelFilter] | None = _LABELS,
    start: AwareDatetime | None = Query(
        None, description="inclusive start, UTC-aware ISO 8601 (default: end - 1 h)"
    ),
    end: AwareDatetime | None = Query(None, description="exclusive end (default: now)"),
    step: float | None = Query(
        None, gt=0, le=86400 * 366, description="bucket width in seconds (default: raw or auto)"
    ),
    agg: Aggregation = Query("mean", description=f"bucket aggregation: {', '.join(AGGREGATIONS)}"),
    store: MetricsStore = Depends(get_store),
    settings: Settings = Depends(get_settings),
    _: Principal = Depends(require_scope("read")),
) -> RangeResult:
    labels = parse_label_filters(label)
    end_at = end or datetime.now(tz=UTC)
    start_at = start or end_at - timedelta(hours=1)
    range_s = (end_at - start_at).total_seconds()
    if range_s <= 0:
        raise ApiError(
            422, "end must be after start", details=[{"loc": ["query", "end"], "msg": "<= start"}]
        )
    max_points = settings.api.auto_step_max_points
    auto = False
    if step is not None and range_s / step > MAX_POINTS_PER_SERIES:
        # Too fine for the range: widen the step rather than ship a flood (said in the answer).
        step, auto = auto_step_s(range_s, MAX_POINTS_PER_SERIES), True
    if step is None and range_s / settings.api.raw_interval_s > max_points:
        step, auto = auto_step_s(range_s, max_points), True
    query = {"metric": metric, "start": start_at, "end": end_at, "device": device}
    df = _store_call(store.query_range, **query, labels=labels or None, step_s=step, agg=agg)
    series = series_from_frame(df)
    if step is None and any(len(s.timestamps) > max_points for s in series):
        # Denser than the configured raw interval suggested: downsample after all.
        step, auto = auto_step_s(range_s, max_points), True
        df = _store_call(store.query_range, **query, labels=labels or None, step_s=step, agg=agg)
        series = series_from_frame(df)
    if len(series) > MAX_SERIES_PER_ANSWER:
        raise ApiError(
            422,
            f"{len(series)} series match; the most per answer is {MAX_SERIES_PER_ANSWER} — "
            "narrow the query with device or label filters",
        )
    return RangeResult(
        metric=metric,
        start=start_at,
        end=end_at,
        step_s=step,
        agg=agg,
        auto_step=auto,
        points=sum(len(s.timestamps) for s in series),
        series=series,
    )


@router.get(
    "/latest",
    response_model=LatestResult,
    summary="The newest point of every matching series",
    responses=error_responses(503),
)
def latest(
    metric: str = _METRIC,
    device: str | None = _DEVICE,
    label: list[LabelFilter] | None = _LABELS,
    store: MetricsStore = Depends(get_store),
    _: Principal = Depends(require_scope("read")),
) -> LatestResult:
    labels = parse_label_filters(label)
    df = _store_call(store.latest, metric=metric, device=device, labels=labels or None)
    points = [
        LatestPoint(labels=s.labels, timestamp=s.timestamps[-1], value=s.values[-1])
        for s in series_from_frame(df)
    ]
    return LatestResult(metric=metric, series=points)
