"""The analysis cycle: read what is new, score it, forecast, judge health, persist — per shard.

A cycle is split into shards of devices (by cohort, so every device's peers sit in its shard);
one Celery task analyses one shard. A shard's results and its detector state are committed in
one transaction together with an :class:`AnalysisRun` row keyed by (cycle, shard), so a task
that is redelivered after a worker died either finds its shard done or redoes it from the
previous state: results are never duplicated and nothing is relearnt from scratch.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session, defer

import models
from fleetwatch.analysis import limits as lim
from fleetwatch.analysis.config import AnalysisSettings
from fleetwatch.analysis.engine import EpisodeEvent, ShardState, Step, advance
from fleetwatch.analysis.grid import GridBatch, GridBuilder, GridLayout, series_name, to_grid
from fleetwatch.analysis.models import (
    AnalysisRun,
    AnomalyEpisode,
    DetectorState,
    DeviceHealth,
    Forecast,
)
from fleetwatch.fleet.models import Device
from fleetwatch.store import MetricsStore
from fleetwatch.telemetry import Sample, SeriesKey

# Peer spread floors per metric (unit of the metric): siblings that agree to 0.1 °C must not
# make a 1 °C difference look extreme.
PEER_MIN_SCALE = {
    "temperature_celsius": 1.5,
    "fan_speed_rpm": 150.0,
    "power_watts": 0.5,
    "cpu_utilization_ratio": 0.05,
    "gpu_utilization_ratio": 0.05,
}
# Risk horizons: 1 h (critical), the warning horizon (warning), 24 h (reported).
HORIZONS_S = {"1h": 3600.0, "warn": 2 * 3600.0, "24h": 86400.0}
# Anomalies and peer outliers say "look at this", not "this will fail": alone or together they
# stay below the warning level; forecasts and broken states carry the failure risk.
HEALTH_WEIGHTS = {
    "anomaly": 0.3,
    "peer": 0.3,
    "forecast": 0.9,
    "component_broken": 0.8,
    "device_unhealthy": 0.7,
    "restart_loop": 0.8,
    "fan_wear": 0.9,
}
RESTART_LOOP_WINDOW_POINTS = 15  # grid points (15 min at the default step)
RESTART_LOOP_RESTARTS = 3.0


@dataclass
class ShardSummary:
    shard: str
    cycle_id: str
    skipped: bool = False
    devices: int = 0
    series: int = 0
    points: int = 0
    episodes_opened: int = 0
    forecasts_crossing: int = 0
    critical: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def shard_of(site: str, n_shards: int) -> int:
    """Stable shard of a site (crc32, the same on every worker and every run).

    Devices are sharded by their site: a cohort (hardware, firmware, site) never straddles two
    shards, so peer comparison sees every sibling, and a shard reads its sites' series only.
    """
    return zlib.crc32(site.encode()) % n_shards


def shard_name(shard: int, n_shards: int) -> str:
    return f"{shard}/{n_shards}"


def shard_devices(*, db: Session, shard: int, n_shards: int) -> list[Device]:
    """The shard's devices, by id. Only the shard's sites are loaded, not the whole fleet."""
    sites = [
        s for s in db.scalars(select(Device.site_id).distinct()) if shard_of(s, n_shards) == shard
    ]
    if not sites:
        return []
    query = select(Device).where(Device.site_id.in_(sites)).order_by(Device.id)
    return list(db.scalars(query).all())


def run_shard(
    *,
    db: Session,
    store: MetricsStore,
    settings: AnalysisSettings,
    shard: int,
    n_shards: int,
    cycle_id: str,
    now_ms: int,
    worker: str = "",
) -> ShardSummary:
    """Analyse one shard for one cycle; a second call with the same cycle does nothing."""
    started = time.perf_counter()
    name = shard_name(shard, n_shards)
    summary = ShardSummary(shard=name, cycle_id=cycle_id)
    if db.get(AnalysisRun, (cycle_id, name)) is not None:
        summary.skipped = True
        return summary
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    devices = shard_devices(db=db, shard=shard, n_shards=n_shards)
    by_id = {d.id: d for d in devices}
    # The state blob (tens of MB) is loaded only if this process does not hold that version.
    row = db.get(DetectorState, name, options=[defer(DetectorState.state)])
    step_ms = int(settings.step_s * 1000)
    # Points arrive late (agents batch, uplinks stall): steps younger than the ingest lag are
    # left for the next cycle instead of being scored as a fleet-wide dropout.
    ready_ms = now_ms - int(settings.ingest_lag_s * 1000)
    end_ms = ready_ms - ready_ms % step_ms
    # Process-level caches are keyed by database too: one process may serve several fleets.
    cache_key = f"{db.get_bind().engine.url}#{name}"
    state = _load_state(row, settings, end_ms, cache_key)
    clock.lap("load")
    start_ms = state.processed_until_ms
    end_ms = min(end_ms, start_ms + settings.max_points_per_cycle * step_ms)
    sites = sorted({d.site_id for d in devices})
    layout = _GRID_LAYOUTS.setdefault(cache_key, GridLayout())
    metrics = [
        *settings.metrics,
        *(m for m in settings.context_metrics if m not in settings.metrics),
    ]
    batch = _read(store, metrics, set(by_id), sites, start_ms, end_ms, step_ms, layout)
    clock.lap("read")
    step = advance(
        state,
        batch,
        step_ms=step_ms,
        open_level=settings.anomaly_open,
        close_level=settings.anomaly_close,
        close_after=settings.close_after_points,
        unscored=frozenset(settings.context_metrics) - set(settings.metrics),
    )
    clock.lap("score")
    context = _Context.read(store, settings, set(by_id), sites, cache_key, end_ms)
    context.fill_memory_by_hardware(by_id)
    forecasts = _forecast(state, context, settings)
    confirmed = _confirm_crossings(state, forecasts, end_ms, settings.forecast_confirm_s)
    clock.lap("forecast")
    peers = _peers(state, by_id)
    fans = _fan_wear(
        state,
        by_id,
        settings.step_s,
        # the points newer than the grid, read only for metrics that have fans to judge
        lambda metric: _fresh(store, metric, sites, end_ms, now_ms, step_ms),
    )
    clock.lap("peers")
    now = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    summary.episodes_opened = _persist_episodes(db, state, step, peers, settings, end_ms)
    summary.forecasts_crossing = _persist_forecasts(db, state, forecasts, confirmed, now)
    health = _health(state, step, peers, fans, forecasts, confirmed, context, devices)
    summary.critical = _persist_health(db, health, now)
    _write_scores(store, health, step, state, by_id, end_ms)
    clock.lap("persist")
    blob = state.to_bytes()
    if row is None:
        db.add(
            DetectorState(
                shard=name,
                cycle_id=cycle_id,
                processed_until_ms=state.processed_until_ms,
                state=blob,
            )
        )
    else:
        row.cycle_id, row.processed_until_ms, row.state = cycle_id, state.processed_until_ms, blob
    points = int(np.isfinite(batch.values).sum())
    db.add(
        AnalysisRun(
            cycle_id=cycle_id, shard=name, worker=worker, series=state.n_series, points=points
        )
    )
    db.flush()
    orm_event.listen(
        db, "after_commit", lambda _s: remember_state(cache_key, cycle_id, state), once=True
    )
    clock.lap("state")
    summary.devices, summary.series, summary.points = len(devices), state.n_series, points
    summary.seconds = time.perf_counter() - started
    summary.timings = timings
    return summary


# The state a worker process committed last, per shard: a worker that analyses the same shard
# again skips deserialising it when the database still holds that very version.
_STATE_CACHE: dict[str, tuple[str, ShardState]] = {}


def _load_state(
    row: DetectorState | None, settings: AnalysisSettings, end_ms: int, cache_key: str
) -> ShardState:
    if row is None:
        return ShardState.empty(
            settings.forecast_window_points,
            end_ms - int(settings.backfill_s * 1000),
            models.DetectorConfig(season_buckets=settings.season_buckets),
        )
    cached = _STATE_CACHE.pop(cache_key, None)
    if cached is not None and cached[0] == row.cycle_id:
        return cached[1]
    return ShardState.from_bytes(row.state)


def remember_state(shard: str, cycle_id: str, state: ShardState) -> None:
    """Called once the shard's transaction committed (the cache must never run ahead)."""
    _STATE_CACHE[shard] = (cycle_id, state)


class _Clock:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 4)
        self.last = now


def _read(
    store: MetricsStore,
    metrics: Sequence[str],
    devices: set[str],
    sites: Sequence[str],
    start_ms: int,
    end_ms: int,
    step_ms: int,
    layout: GridLayout | None = None,
) -> GridBatch:
    if end_ms <= start_ms or not sites:
        return to_grid({}, start_ms=start_ms, end_ms=start_ms, step_ms=step_ms)
    builder = GridBuilder(start_ms=start_ms, end_ms=end_ms, step_ms=step_ms, layout=layout)
    # Each metric is put on the grid while the store reads the next one.
    read = store.query_ranges(
        metrics=list(dict.fromkeys(metrics)), start=start_ms, end=end_ms, sites=sites
    )
    for metric, df in read:
        if not df.empty:
            mine = df["device"].isin(devices)
            builder.add(metric, df if mine.all() else df[mine])
    return builder.batch()


# The grid layout of each shard's series, kept across cycles (a memo, checked on every use).
_GRID_LAYOUTS: dict[str, GridLayout] = {}


@dataclass
class _Context:
    """Latest device-reported facts the cycle needs: limits and states."""

    trips: dict[tuple[str, str], list[tuple[float, str]]]
    disk_totals: dict[tuple[str, ...], float]
    memory_totals: dict[tuple[str, ...], float]
    broken: dict[str, list[str]]  # device -> components in BROKEN
    unhealthy: set[str]

    @classmethod
    def read(
        cls,
        store: MetricsStore,
        settings: AnalysisSettings,
        devices: set[str],
        sites: list[str],
        shard: str,
        now_ms: int,
    ) -> _Context:
        def latest(metric: str, **labels: str) -> pd.DataFrame:
            df = store.latest(metric=metric, labels=labels or None, sites=sites)
            return df[df["device"].isin(devices)] if not df.empty else df

        broken: dict[str, list[str]] = {}
        states = latest("component_state", state="BROKEN")
        for r in states.to_dict("records") if not states.empty else []:
            if r["value"] >= 1:
                component = r.get("component")
                broken.setdefault(str(r["device"]), []).append(
                    component if isinstance(component, str) else "?"
                )
        healthy = latest("device_healthy")
        unhealthy = set() if healthy.empty else set(healthy.loc[healthy["value"] < 1, "device"])
        # Trip points and capacities change rarely: read them every few minutes, not per cycle.
        cached = _LIMITS_CACHE.get(shard)
        if cached is None or abs(now_ms - cached[0]) > settings.limits_refresh_s * 1000:
            cached = (
                now_ms,
                lim.trip_points(latest("thermal_trip_point_celsius")),
                lim.totals(latest("disk_total_bytes"), ("device", "disk")),
                lim.totals(latest("memory_total_bytes"), ("device", "module")),
            )
            _LIMITS_CACHE[shard] = cached
        return cls(
            trips=cached[1],
            disk_totals=cached[2],
            memory_totals=cached[3],
            broken=broken,
            unhealthy=unhealthy,
        )

    def fill_memory_by_hardware(self, by_id: dict[str, Device]) -> None:
        """A device that reports memory use but not size (a Greengrass core's nucleus emitter
        sends only use) gets the size its hardware model reports elsewhere in the shard."""
        by_model: dict[str, float] = {}
        for (device_id, module), total in self.memory_totals.items():
            found = by_id.get(device_id)
            if found is not None and module == "":
                by_model.setdefault(found.hardware_model, total)
        for device in by_id.values():
            if (device.id, "") not in self.memory_totals and device.hardware_model in by_model:
                self.memory_totals[(device.id, "")] = by_model[device.hardware_model]


_LIMITS_CACHE: dict[str, tuple[int, Any, Any, Any]] = {}


@dataclass
class _Forecasts:
    rows: np.ndarray  # state rows that have a limit
    limits: list[lim.Limit]
    result: models.TimeToThreshold | None


def _forecast(state: ShardState, context: _Context, settings: AnalysisSettings) -> _Forecasts:
    level = _last_finite(state.window)
    rows, found = [], []
    for i, (metric, labels) in enumerate(state.keys):
        if metric not in ("temperature_celsius", "disk_free_bytes", "memory_used_bytes"):
            continue
        limit = lim.limit_for(
            metric,
            dict(labels),
            float(level[i]),
            trips=context.trips,
            disk_totals=context.disk_totals,
            memory_totals=context.memory_totals,
            disk_full_ratio=settings.disk_full_ratio,
            memory_limit_ratio=settings.memory_limit_ratio,
        )
        if limit is not None:
            rows.append(i)
            found.append(limit)
    if not rows:
        return _Forecasts(np.zeros(0, dtype=np.int64), [], None)
    index = np.asarray(rows, dtype=np.int64)
    # Only series heading for their limit (or past it) are worth a fit: most of a healthy
    # fleet is flat or moving away, and skipping it halves the fleet-wide pass.
    heading = _heading_for_limit(state.window[index], found)
    index = index[heading]
    found = [limit for limit, keep in zip(found, heading, strict=True) if keep]
    if not len(index):
        return _Forecasts(np.zeros(0, dtype=np.int64), [], None)
    result = models.forecast_time_to_threshold(
        state.window[index],
        np.array([limit.value for limit in found]),
        load=_thermal_load(state, index),
        interval_seconds=settings.step_s,
        window_points=settings.forecast_window_points,
        linear_window_points=max(10, settings.forecast_window_points // 2),
        rising=np.array([limit.rising for limit in found]),
        # A window sees a trend, not a season: do not extrapolate it further than a few
        # window lengths (a morning's warming is not a heading for the trip point).
        max_horizon_seconds=min(
            settings.forecast_horizon_s,
            settings.forecast_reach * settings.forecast_window_points * settings.step_s,
        ),
    )
    return _Forecasts(index, found, result)


def _thermal_load(state: ShardState, rows: np.ndarray) -> np.ndarray:
    """Per forecast row: the window of what heats a temperature series (NaN for the rest).

    A device's total power draw (the sum of its rails) where it reports power, else its CPU
    utilisation (a Coral host's CPU feeds the TPU and warms the enclosure).
    """
    load = np.full((len(rows), state.window.shape[1]), np.nan)
    devices = state.devices()
    wanted: dict[str, list[int]] = {}
    for j, i in enumerate(rows.tolist()):
        if state.keys[i][0] == "temperature_celsius":
            wanted.setdefault(devices[i], []).append(j)
    if not wanted:
        return load
    power: dict[str, list[int]] = {}
    cpu: dict[str, int] = {}
    for i, (metric, labels) in enumerate(state.keys):
        if metric == "power_watts":
            power.setdefault(devices[i], []).append(i)
        elif metric == "cpu_utilization_ratio" and len(labels) == 2:  # device, site only
            cpu[devices[i]] = i
    for device, targets in wanted.items():
        if device in power:
            rails = state.window[power[device]]
            with np.errstate(all="ignore"):
                total = np.where(np.isfinite(rails).any(axis=0), np.nansum(rails, axis=0), np.nan)
        elif device in cpu:
            total = state.window[cpu[device]]
        else:
            continue
        load[targets] = total
    return load


def _heading_for_limit(window: np.ndarray, limits: list[lim.Limit]) -> np.ndarray:
    """Rows whose last quarter-hour moved towards the limit since half an hour before, or that
    are already past it."""
    direction = np.array([1.0 if limit.rising else -1.0 for limit in limits])
    value = np.array([limit.value for limit in limits])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of new series
        recent = np.nanmean(window[:, -15:], axis=1)
        earlier = np.nanmean(window[:, -45:-30], axis=1)
    towards = (recent - earlier) * direction > 0
    past = (recent - value) * direction >= 0
    return np.asarray(towards | past, dtype=bool)


def _confirm_crossings(
    state: ShardState, forecasts: _Forecasts, end_ms: int, confirm_s: float
) -> np.ndarray:
    """Per forecast row: has a crossing been forecast without a break for ``confirm_s``?

    A load burst can point a short trend at the trip point for a few minutes; a real runaway
    keeps pointing there. Only confirmed crossings raise a device's risk.
    """
    if forecasts.result is None:
        return np.zeros(0, dtype=bool)
    rows = forecasts.rows
    crossing = forecasts.result.crossing_expected
    since = state.crossing_since_ms
    since[rows] = np.where(crossing, np.where(np.isnan(since[rows]), end_ms, since[rows]), np.nan)
    others = np.ones(state.n_series, dtype=bool)
    others[rows] = False
    since[others] = np.nan
    # An imminent crossing cannot wait the full confirmation: a quarter of the time left.
    needed_ms = np.minimum(confirm_s, 0.25 * forecasts.result.time_to_threshold) * 1000
    with np.errstate(invalid="ignore"):
        return np.asarray(crossing & (end_ms - since[rows] >= needed_ms), dtype=bool)


def _last_finite(window: np.ndarray) -> np.ndarray:
    if window.size == 0:
        return np.zeros(window.shape[0])
    finite = np.isfinite(window)
    last = window.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    values = window[np.arange(window.shape[0]), last]
    return np.where(finite.any(axis=1), values, np.nan)


def _peers(state: ShardState, by_id: dict[str, Device]) -> np.ndarray:
    """Peer score per series: the device against the same series of its cohort siblings."""
    scores = np.zeros(state.n_series)
    if state.n_series == 0:
        return scores
    values = _last_finite(state.window[:, -5:])
    groups: dict[str, list[int]] = {}
    cohorts: list[str] = [""] * state.n_series
    devices = state.devices()
    for i, (metric, labels) in enumerate(state.keys):
        if metric not in PEER_MIN_SCALE:
            continue
        device = by_id.get(devices[i])
        if device is None:
            continue
        rest = ",".join(f"{k}={v}" for k, v in labels if k not in ("device", "site"))
        cohorts[i] = f"{device.cohort}|{rest}"
        groups.setdefault(metric, []).append(i)
    for metric, rows in groups.items():
        index = np.asarray(rows)
        result = models.peer_scores(
            values[index], np.asarray([cohorts[i] for i in rows]), min_scale=PEER_MIN_SCALE[metric]
        )
        scores[index] = result.score
    return scores


@dataclass
class _Fans:
    rows: np.ndarray  # state rows of fan_speed_rpm series with a duty series beside them
    wear: models.FanWear | None

    def signal(self, n_series: int) -> np.ndarray:
        out = np.zeros(n_series)
        if self.wear is not None:
            out[self.rows] = self.wear.signal
        return out


def _fan_wear(
    state: ShardState,
    by_id: dict[str, Device],
    step_s: float,
    fresh: Callable[[str], dict[SeriesKey, float]],
) -> _Fans:
    """Wear of every fan whose duty cycle is reported too, against fans of the same model.

    The freshest rpm and duty readings, newer than the grid (``fresh`` reads them for one
    metric), count too (see :func:`models.fan_wear`): a stopped fan is a state, read like a
    BROKEN component, not left for the grid to settle.
    """
    rpm_rows, duty_rows, groups = [], [], []
    devices = state.devices()
    for i, (metric, labels) in enumerate(state.keys):
        if metric != "fan_speed_rpm":
            continue
        duty = state.index.get(("fan_pwm_ratio", labels))
        device = by_id.get(devices[i])
        if duty is None or device is None:
            continue
        rpm_rows.append(i)
        duty_rows.append(duty)
        groups.append(device.hardware_model)
    if not rpm_rows:
        return _Fans(np.zeros(0, dtype=np.int64), None)
    rpm_now, duty_now = fresh("fan_speed_rpm"), fresh("fan_pwm_ratio")
    wear = models.fan_wear(
        state.window[rpm_rows],
        state.window[duty_rows],
        groups,
        interval_seconds=step_s,
        latest_rpm=[rpm_now.get(state.keys[i], math.nan) for i in rpm_rows],
        latest_duty=[duty_now.get(state.keys[i], math.nan) for i in duty_rows],
    )
    return _Fans(np.asarray(rpm_rows, dtype=np.int64), wear)


def _fresh(
    store: MetricsStore, metric: str, sites: Sequence[str], end_ms: int, now_ms: int, step_ms: int
) -> dict[SeriesKey, float]:
    """Per series, its last grid step after ``end_ms`` (the steps the ingest lag holds back)."""
    df = store.query_range(metric=metric, start=end_ms, end=now_ms + 1, sites=sites)
    batch = to_grid({metric: df}, start_ms=end_ms, end_ms=now_ms + 1, step_ms=step_ms)
    if not batch.keys or batch.values.shape[1] == 0:
        return {}
    return dict(zip(batch.keys, _last_finite(batch.values).tolist(), strict=True))


# -- persistence --------------------------------------------------------------------------------
def _persist_episodes(
    db: Session,
    state: ShardState,
    step: Step,
    peers: np.ndarray,
    settings: AnalysisSettings,
    end_ms: int,
) -> int:
    """Open, update and close episodes in a few bulk statements.

    A fleet-wide event (a site losing its uplink) opens episodes on every series at once;
    one statement per event, each searching the session, took minutes. A series' events are
    applied in their order, and events of different series never touch the same rows, so
    the first event of every series goes in one batch, the second in the next, and so on.
    """
    opened = 0
    rounds: list[list[EpisodeEvent]] = []
    seen: dict[str, int] = {}
    for event in step.events:
        key = series_name(state.keys[event.row])
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(event)
    for events in rounds:
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        closes: list[dict[str, Any]] = []
        for event in events:
            metric, labels = state.keys[event.row]
            key = series_name(state.keys[event.row])
            at = datetime.fromtimestamp(event.at_ms / 1000, tz=UTC)
            if event.event == "open":
                opened += 1
                inserts.append(
                    {
                        "device_id": dict(labels).get("device", ""),
                        "metric": metric,
                        "labels": dict(labels),
                        "series_key": key,
                        "kind": event.kind,
                        "started_at": at,
                        "peak_score": event.peak,
                        "last_score": event.score,
                    }
                )
                continue
            values = {"b_key": key, "b_kind": event.kind, "b_peak": event.peak}
            values["b_last"] = event.score
            if event.event == "close":
                closes.append({**values, "b_ended": at})
            else:
                updates.append(values)
        _insert_episodes(db, inserts)
        _update_open_episodes(db, updates, closing=False)
        _update_open_episodes(db, closes, closing=True)
    # Peer episodes: open while the device stands out from its cohort.
    at = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    newly = np.flatnonzero((peers >= settings.peer_open) & ~state.peer_open)
    ended = np.flatnonzero((peers < settings.anomaly_close) & state.peer_open)
    peer_inserts = []
    for row in newly.tolist():
        metric, labels = state.keys[row]
        peer_inserts.append(
            {
                "device_id": dict(labels).get("device", ""),
                "metric": metric,
                "labels": dict(labels),
                "series_key": series_name(state.keys[row]),
                "kind": "peer",
                "started_at": at,
                "peak_score": float(peers[row]),
                "last_score": float(peers[row]),
            }
        )
        opened += 1
    _insert_episodes(db, peer_inserts)
    _update_open_episodes(
        db,
        [
            {
                "b_key": series_name(state.keys[row]),
                "b_kind": "peer",
                "b_ended": at,
                "b_last": float(peers[row]),
            }
            for row in ended.tolist()
        ],
        closing=True,
        peak=False,
    )
    state.peer_open[newly] = True
    state.peer_open[ended] = False
    return opened


def _insert_episodes(db: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(AnomalyEpisode), rows)


def _update_open_episodes(
    db: Session, rows: list[dict[str, Any]], *, closing: bool, peak: bool = True
) -> None:
    """One statement for many open episodes (by series and kind), executed for every row."""
    if not rows:
        return
    table = cast(Table, AnomalyEpisode.__table__)
    values: dict[str, Any] = {"last_score": bindparam("b_last")}
    if peak:
        values["peak_score"] = bindparam("b_peak")
    if closing:
        values["ended_at"] = bindparam("b_ended")
    statement = (
        update(table)
        .where(
            table.c.series_key == bindparam("b_key"),
            table.c.kind == bindparam("b_kind"),
            table.c.ended_at.is_(None),
        )
        .values(values)
    )
    db.execute(statement, rows)


def _persist_forecasts(
    db: Session, state: ShardState, forecasts: _Forecasts, confirmed: np.ndarray, now: datetime
) -> int:
    """Store forecasts that expect a crossing; drop stored ones that no longer do.

    ``will_cross`` is set once the crossing is confirmed (forecast long enough without a
    break); until then the row shows the trend on the device page but drives nothing.
    """
    result = forecasts.result
    if result is None:
        return 0
    crossing = result.crossing_expected
    rows: list[dict[str, Any]] = []
    for j, row in enumerate(forecasts.rows.tolist()):
        if not crossing[j]:
            continue
        metric, labels = state.keys[row]
        ttt = float(result.time_to_threshold[j])
        rows.append(
            {
                "device_id": dict(labels).get("device", ""),
                "series_key": series_name(state.keys[row]),
                "limit_name": forecasts.limits[j].name,
                "metric": metric,
                "labels": dict(labels),
                "limit_value": forecasts.limits[j].value,
                "computed_at": now,
                "will_cross": bool(confirmed[j]),
                "time_to_threshold_s": ttt,
                "lower_s": _finite_or_none(result.lower[j]),
                "upper_s": _finite_or_none(result.upper[j]),
                "crossing_at": datetime.fromtimestamp(now.timestamp() + ttt, tz=UTC),
                "current_value": _finite_or_none(result.level[j]),
                "method": (
                    "damped_trend" if math.isfinite(result.time_constant[j]) else "linear_trend"
                ),
            }
        )
    devices = {dict(state.keys[r][1]).get("device", "") for r in forecasts.rows.tolist()}
    # One read of the stored rows of these devices, then one insert and one executemany
    # update: a statement per forecast was a round trip per crossing series.
    stored = {
        (device, key, limit): forecast_id
        for forecast_id, device, key, limit in db.execute(
            select(Forecast.id, Forecast.device_id, Forecast.series_key, Forecast.limit_name).where(
                Forecast.device_id.in_(devices)
            )
        )
    }
    identity = ("device_id", "series_key", "limit_name")
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for r in rows:
        forecast_id = stored.get((r["device_id"], r["series_key"], r["limit_name"]))
        if forecast_id is None:
            new_rows.append(r)
        else:
            values = {f"b_{k}": v for k, v in r.items() if k not in identity}
            changed.append({"b_id": forecast_id, **values})
    if new_rows:
        db.execute(insert(Forecast), new_rows)
    if changed:
        table = cast(Table, Forecast.__table__)
        names = [name for name in rows[0] if name not in identity]
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}", type_=table.c[name].type) for name in names})
        )
        db.execute(statement, changed)
    stale = delete(Forecast).where(Forecast.device_id.in_(devices))
    if rows:
        stale = stale.where(Forecast.series_key.not_in([r["series_key"] for r in rows]))
    db.execute(stale)
    return int(np.count_nonzero(confirmed))


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass
class _Health:
    devices: list[Device]
    risk: dict[str, np.ndarray]
    signals: list[list[dict[str, Any]]]
    device_anomaly: np.ndarray


def _health(
    state: ShardState,
    step: Step,
    peers: np.ndarray,
    fans: _Fans,
    forecasts: _Forecasts,
    confirmed: np.ndarray,
    context: _Context,
    devices: list[Device],
) -> _Health:
    position = {d.id: i for i, d in enumerate(devices)}
    n = len(devices)
    series_device = np.array([position.get(d, -1) for d in state.devices()], dtype=np.int64)
    recent = step.scores.max(axis=1) if step.scores.size else np.zeros(state.n_series)
    anomaly, anomaly_row = _per_device_max(recent, series_device, n)
    peer, peer_row = _per_device_max(peers, series_device, n)
    ttt = np.full(state.n_series, np.inf)
    if forecasts.result is not None:
        # The late end of the interval: a device is flagged when even the slow case crosses.
        ttt[forecasts.rows] = np.where(confirmed, forecasts.result.upper, np.inf)
    soonest, forecast_row = _per_device_min(ttt, series_device, n)
    restarts, restart_row = _per_device_max(_restart_pressure(state), series_device, n)
    fan, fan_row = _per_device_max(fans.signal(state.n_series), series_device, n)
    broken = np.array([1.0 if d.id in context.broken else 0.0 for d in devices])
    unhealthy = np.array([1.0 if d.id in context.unhealthy else 0.0 for d in devices])
    risk: dict[str, np.ndarray] = {}
    tops: list[list[tuple[str, float]]] = []
    for horizon, seconds in HORIZONS_S.items():
        scores = models.health_scores(
            {
                "anomaly": anomaly,
                "peer": peer,
                "forecast": _pressure(soonest, seconds, horizon),
                "component_broken": broken,
                "device_unhealthy": unhealthy,
                "restart_loop": restarts,
                "fan_wear": fan,
            },
            weights=HEALTH_WEIGHTS,
        )
        risk[horizon] = scores.risk
        tops = scores.top_signals  # the 24 h view explains the status
    signal_rows = {
        "anomaly": anomaly_row,
        "peer": peer_row,
        "forecast": forecast_row,
        "restart_loop": restart_row,
        "fan_wear": fan_row,
    }
    described = [
        [
            _describe(name, share, i, state, signal_rows, forecasts, fans, context, devices)
            for name, share in top
        ]
        for i, top in enumerate(tops)
    ]
    return _Health(devices, risk, described, anomaly)


def _pressure(soonest: np.ndarray, seconds: float, horizon: str) -> np.ndarray:
    """Forecast signal for one horizon: the alerting horizons count a crossing inside them
    only; the 24 h view lets the pressure fade beyond the horizon, for planning."""
    if horizon == "24h":
        return models.forecast_pressure(soonest, seconds)
    return np.asarray(soonest <= seconds, dtype=np.float64)


def _restart_pressure(state: ShardState) -> np.ndarray:
    """Per series: restarts counted in the recent window, as a share of a restart loop."""
    pressure = np.zeros(state.n_series)
    rows = [i for i, (metric, _) in enumerate(state.keys) if metric == "module_restarts_total"]
    if not rows:
        return pressure
    recent = state.window[rows, -RESTART_LOOP_WINDOW_POINTS:]
    with np.errstate(all="ignore"):
        # Counters only grow; a drop is a runtime restart (new instance), not negative restarts.
        steps = np.diff(recent, axis=1)
        increase = np.nansum(np.where(steps > 0, steps, 0.0), axis=1)
    pressure[rows] = np.clip(increase / RESTART_LOOP_RESTARTS, 0.0, 1.0)
    return pressure


def _per_device_max(values: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per device: the largest positive value of its series (0 if none) and the first series
    holding it (-1 if none)."""
    best = np.zeros(n)
    row = np.full(n, -1)
    index = np.flatnonzero((owner >= 0) & (values > 0))
    if index.size:
        _first_of_best(np.maximum, best, row, index, owner[index], values[index])
    return best, row


def _per_device_min(values: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per device: the smallest finite value of its series (inf if none) and the first series
    holding it (-1 if none)."""
    best = np.full(n, np.inf)
    row = np.full(n, -1)
    index = np.flatnonzero((owner >= 0) & np.isfinite(values))
    if index.size:
        _first_of_best(np.minimum, best, row, index, owner[index], values[index])
    return best, row


def _first_of_best(
    pick: np.ufunc,
    best: np.ndarray,
    row: np.ndarray,
    index: np.ndarray,
    device: np.ndarray,
    value: np.ndarray,
) -> None:
    """Reduce ``value`` per device into ``best`` and note the earliest series that reached it,
    as a loop over the series in order that replaces only on a strictly better value would."""
    pick.at(best, device, value)
    hit = value == best[device]
    devices, first = np.unique(device[hit], return_index=True)
    row[devices] = index[hit][first]
    best[devices] = value[hit][first]  # that series' own value (0.0 and -0.0 compare equal)


def _describe(
    name: str,
    share: float,
    device: int,
    state: ShardState,
    signal_rows: dict[str, np.ndarray],
    forecasts: _Forecasts,
    fans: _Fans,
    context: _Context,
    devices: list[Device],
) -> dict[str, Any]:
    """A top signal in words, with the series behind it."""
    entry: dict[str, Any] = {"signal": name, "contribution": share, "metric": None, "labels": {}}
    row = signal_rows.get(name)
    if row is not None and row[device] >= 0:
        metric, labels = state.keys[int(row[device])]
        entry["metric"], entry["labels"] = metric, dict(labels)
        subject = _subject(metric, dict(labels))
        if name == "anomaly":
            entry["detail"] = f"{subject} behaves unusually"
        elif name == "restart_loop":
            entry["detail"] = f"{subject}: module restarting repeatedly"
        elif name == "peer":
            entry["detail"] = f"{subject} differs from its cohort"
        elif name == "fan_wear":
            entry["detail"] = _describe_fan(subject, fans, int(row[device]))
        else:
            j = int(np.flatnonzero(forecasts.rows == row[device])[0])
            result = forecasts.result
            assert result is not None
            limit = forecasts.limits[j]
            entry["detail"] = (
                f"{subject} reaches {limit.name.replace('_', ' ')} ({_fmt(limit.value, metric)}) "
                f"in about {_duration(float(result.time_to_threshold[j]))}"
            )
    elif name == "component_broken":
        entry["detail"] = "component BROKEN: " + ", ".join(
            context.broken.get(devices[device].id, [])
        )
    elif name == "device_unhealthy":
        entry["detail"] = "Greengrass reports the device UNHEALTHY"
    return entry


def _describe_fan(subject: str, fans: _Fans, row: int) -> str:
    wear = fans.wear
    assert wear is not None
    j = int(np.flatnonzero(fans.rows == row)[0])
    text = (
        f"{subject}: turns at {wear.relative[j]:.0%} of its normal speed for its duty cycle "
        f"({wear.effectiveness[j]:.0f} of {wear.reference[j]:.0f} rpm at full duty)"
    )
    stall = float(wear.time_to_stall_s[j])
    if math.isfinite(stall):
        text += f"; at this rate it stops in about {_duration(stall)}"
    return text


def _subject(metric: str, labels: dict[str, str]) -> str:
    extra = [v for k, v in labels.items() if k not in ("device", "site")]
    return f"{metric}{'/' + '/'.join(extra) if extra else ''}"


def _fmt(value: float, metric: str) -> str:
    if metric.endswith("_celsius"):
        return f"{value:.1f} °C"
    if metric.endswith("_bytes"):
        return f"{value / 2**30:.2f} GiB"
    return f"{value:g}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def status_for(risk_1h: float, risk_warn: float) -> str:
    """critical: likely to fail within the hour; warning: within the warning horizon (2 h).

    A crossing forecast further out stays in ``risk_24h`` for planning but pages nobody: a
    trend extrapolated for many hours is a season as often as a fault.
    """
    if risk_1h >= 0.6:
        return "critical"
    if risk_warn >= 0.6:
        return "warning"
    return "ok"


def _persist_health(db: Session, health: _Health, now: datetime) -> int:
    """Every device's health row, inserted or updated in bulk (not one ORM object each)."""
    ids = [d.id for d in health.devices]
    existing = set(
        db.scalars(select(DeviceHealth.device_id).where(DeviceHealth.device_id.in_(ids)))
    )
    risk_1h, risk_24h = health.risk["1h"].tolist(), health.risk["24h"].tolist()
    risk_warn = health.risk["warn"].tolist()
    critical = 0
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for i, device in enumerate(health.devices):
        r1, r24 = risk_1h[i], risk_24h[i]
        status = status_for(r1, risk_warn[i])
        critical += status == "critical"
        row = {
            "device_id": device.id,
            "computed_at": now,
            "risk_1h": r1,
            "risk_24h": r24,
            "health": 1.0 - r24,
            "status": status,
            "top_signals": health.signals[i],
        }
        (updates if device.id in existing else inserts).append(row)
    if inserts:
        db.execute(insert(DeviceHealth), inserts)
    if updates:
        # A plain executemany by primary key: the ORM's bulk update prepares every row itself.
        table = cast(Table, DeviceHealth.__table__)
        columns = [c for c in updates[0] if c != "device_id"]
        statement = (
            update(table)
            .where(table.c.device_id == bindparam("b_device_id"))
            .values({c: bindparam(f"b_{c}") for c in columns})
        )
        db.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in updates])
    return critical


def _write_scores(
    store: MetricsStore,
    health: _Health,
    step: Step,
    state: ShardState,
    by_id: dict[str, Device],
    end_ms: int,
) -> None:
    """Scores as a measurement, so they chart next to the data they judge."""
    ts = end_ms - 1
    anomaly = health.device_anomaly.tolist()
    risks = [(h, r.tolist()) for h, r in health.risk.items() if h != "warn"]
    samples: list[Sample] = []
    for i, device in enumerate(health.devices):
        labels = {"device": device.id, "site": device.site_id}
        samples.append(Sample("fleetwatch_anomaly_score", labels, anomaly[i], ts))
        for horizon, risk in risks:
            samples.append(
                Sample("fleetwatch_device_risk_ratio", {**labels, "horizon": horizon}, risk[i], ts)
            )
    if samples:
        store.write(samples)


# -- reads for the API ----------------------------------------------------------------------------
def list_health(
    *, db: Session, site: str | None = None, status: str | None = None, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Health rows joined with their device, as plain dicts (no ORM objects: the dashboard
    asks for the whole fleet on every refresh)."""
    query = select(
        DeviceHealth.device_id,
        Device.site_id,
        Device.hardware_model,
        Device.firmware,
        Device.node_name,
        DeviceHealth.risk_1h,
        DeviceHealth.risk_24h,
        DeviceHealth.health,
        DeviceHealth.status,
        DeviceHealth.top_signals,
        DeviceHealth.computed_at,
    ).join(Device, Device.id == DeviceHealth.device_id)
    if site is not None:
        query = query.where(Device.site_id == site)
    if status is not None:
        query = query.where(DeviceHealth.status == status)
    query = query.order_by(DeviceHealth.risk_24h.desc(), DeviceHealth.device_id).limit(limit)
    return [
        {
            "device_id": r.device_id,
            "site_id": r.site_id,
            "cohort": f"{r.hardware_model}/{r.firmware or '-'}/{r.site_id}",
            "node_name": r.node_name,
            "risk_1h": r.risk_1h,
            "risk_24h": r.risk_24h,
            "health": r.health,
            "status": r.status,
            "top_signals": r.top_signals,
            "computed_at": r.computed_at,
        }
        for r in db.execute(query)
    ]


def get_health(*, db: Session, device_id: str) -> DeviceHealth | None:
    return db.get(DeviceHealth, device_id)


def device_forecasts(*, db: Session, device_id: str) -> list[Forecast]:
    query = select(Forecast).where(Forecast.device_id == device_id)
    return list(db.scalars(query.order_by(Forecast.time_to_threshold_s)).all())


def crossing_forecasts(*, db: Session, within_s: float | None = None) -> list[Forecast]:
    query = select(Forecast).where(Forecast.will_cross.is_(True))
    if within_s is not None:
        query = query.where(Forecast.time_to_threshold_s <= within_s)
    return list(db.scalars(query).all())


def device_anomalies(
    *, db: Session, device_id: str, since: datetime | None = None, open_only: bool = False
) -> list[AnomalyEpisode]:
    query = select(AnomalyEpisode).where(AnomalyEpisode.device_id == device_id)
    if since is not None:
        query = query.where(
            (AnomalyEpisode.ended_at.is_(None)) | (AnomalyEpisode.ended_at >= since)
        )
    if open_only:
        query = query.where(AnomalyEpisode.ended_at.is_(None))
    return list(db.scalars(query.order_by(AnomalyEpisode.started_at.desc()).limit(500)).all())


def last_cycle(*, db: Session) -> datetime | None:
    return db.scalar(
        select(AnalysisRun.finished_at).order_by(AnalysisRun.finished_at.desc()).limit(1)
    )


__all__ = [
    "ShardSummary",
    "crossing_forecasts",
    "device_anomalies",
    "device_forecasts",
    "get_health",
    "last_cycle",
    "list_health",
    "run_shard",
    "shard_devices",
    "shard_of",
    "status_for",
]
