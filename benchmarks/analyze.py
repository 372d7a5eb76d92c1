"""``fleetwatch bench analyze``: the analysis cycle at fleet scale.

(a) The incremental cycle for 10,000 devices x 25 series: one new point per series is written
    to a real influxd (started for the run), then every shard runs ``run_shard`` — read the new
    points from InfluxDB, score them, forecast the series that have limits, compare peers,
    judge health, persist results and detector state (SQLite state DB). The detector state is
    warmed beforehand with two hours of history, as after a day of operation.
(b) The full re-fit over 24 h of 1-minute history, series/s, next to statsmodels' damped Holt
    fitted per series on a sample in the same run (the same code as ``bench models``, both
    with BLAS on one thread: see there why).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

import models
from benchmarks._common import emit
from benchmarks.models import refit, statsmodels_rate
from fleetwatch.analysis import service
from fleetwatch.analysis.engine import ShardState, advance
from fleetwatch.analysis.grid import GridBatch
from fleetwatch.analysis.models import DetectorState
from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.settings import load_settings
from fleetwatch.store import open_store
from fleetwatch.store.influxd_process import InfluxdProcess
from fleetwatch.telemetry import Sample, SeriesKey, now_ms

SENSORS = ("cpu", "gpu", "soc0", "soc1", "soc2", "cv0", "cv1", "cv2", "tj", "tboard")
RAILS = ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO")
MODULES = ("edgeAgent", "objectDetector")


def device_series(device: str, site: str) -> list[tuple[str, dict[str, str], float]]:
    """25 series of one Jetson-class gateway: (metric, labels, typical level)."""
    base = {"device": device, "site": site}
    out = [("temperature_celsius", {**base, "sensor": s}, 55.0) for s in SENSORS]
    out += [("power_watts", {**base, "rail": r}, 6.0) for r in RAILS]
    out += [
        ("fan_speed_rpm", {**base, "fan": "fan0"}, 2400.0),
        ("fan_pwm_ratio", {**base, "fan": "fan0"}, 0.48),  # fan wear reads rpm per duty
        ("cpu_utilization_ratio", base, 0.4),
        ("gpu_utilization_ratio", base, 0.5),
        ("memory_used_bytes", base, 3.0e9),
        ("disk_free_bytes", {**base, "disk": "nvme0n1p1"}, 4.0e10),
        ("message_queue_length", {**base, "endpoint": "iothub", "priority": "2000000000"}, 2.0),
    ]
    out += [("module_availability_ratio", {**base, "module": m}, 1.0) for m in MODULES]
    out += [("module_restarts_total", {**base, "module": m}, 3.0) for m in MODULES]
    return out


def _register(url: str, devices: list[tuple[str, str]]) -> None:
    engine = make_engine(url)
    now = sa.func.now()
    with engine.begin() as conn:
        sites = sorted({s for _, s in devices})
        conn.execute(
            sa.text(
                "INSERT INTO sites (id, name, timezone, created_at) VALUES (:id, :id, 'UTC', :t)"
            ),
            [{"id": s, "t": "2026-12-01 00:00:00"} for s in sites],
        )
        conn.execute(
            sa.text(
                "INSERT INTO devices (id, site_id, hardware_model, firmware, labels, registered_at,"
                " updated_at) VALUES (:id, :site, 'jetson-agx-orin', :fw, '{}', :t, :t)"
            ),
            [
                {"id": d, "site": s, "fw": f"jetpack-6.{i % 2}", "t": "2026-12-01 00:00:00"}
                for i, (d, s) in enumerate(devices)
            ],
        )
    del now
    engine.dispose()


def _warm(
    settings: Any,
    sessions: Any,
    keys_by_shard: dict[int, list[SeriesKey]],
    levels: dict[SeriesKey, float],
    t_last: int,
    history: int,
) -> None:
    """Warm each shard's detector with ``history`` minutes, as after hours of operation.

    The state is the one ``run_shard`` would have built: the detector configured from the
    settings (as ``service._load_state`` configures a new shard).
    """
    step = int(settings.analysis.step_s * 1000)
    rng = np.random.default_rng(7)
    times = t_last - step * np.arange(history - 1, -1, -1, dtype=np.int64)
    config = models.DetectorConfig(season_buckets=settings.analysis.season_buckets)
    for shard, keys in keys_by_shard.items():
        base = np.array([levels[k] for k in keys])[:, None]
        values = base * (1 + 0.01 * rng.standard_normal((len(keys), history)))
        state = ShardState.empty(settings.analysis.forecast_window_points, int(times[0]), config)
        advance(
            state,
            GridBatch(keys=keys, values=values, times_ms=times),
            step_ms=step,
            open_level=settings.analysis.anomaly_open,
            close_level=settings.analysis.anomaly_close,
            close_after=settings.analysis.close_after_points,
        )
        with session_scope(sessions) as db:
            db.add(
                DetectorState(
                    shard=service.shard_name(shard, settings.analysis.shards),
                    cycle_id="warm",
                    processed_until_ms=state.processed_until_ms,
                    state=state.to_bytes(),
                )
            )


def cycle(n_devices: int, shards: int, history: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, InfluxdProcess(Path(tmp) / "influxd") as influxd:
        settings = load_settings(
            data_dir=Path(tmp),
            store={"backend": "influxdb", "influx_url": influxd.url, "influx_database": "bench"},
            analysis={"shards": shards},
        )
        migrations.upgrade(settings.database_url)
        sessions = session_factory(make_engine(settings.database_url))
        devices = [(f"orin-{i:05d}", f"site-{i % 20:02d}") for i in range(n_devices)]
        _register(settings.database_url, devices)
        step = int(settings.analysis.step_s * 1000)
        t_new = (now_ms() // step - 5) * step
        t_last = t_new - step
        series: list[tuple[str, dict[str, str], float]] = []
        for device, site in devices:
            series.extend(device_series(device, site))
        levels = {(m, tuple(sorted(lab.items()))): lvl for m, lab, lvl in series}
        # Each series is warmed in the shard that will read it: run_shard shards by site.
        keys_by_shard: dict[int, list[SeriesKey]] = {s: [] for s in range(shards)}
        for key in levels:
            keys_by_shard[service.shard_of(dict(key[1])["site"], shards)].append(key)
        print(f"warming {len(levels):,} series in {shards} shards with {history} min of history")
        _warm(settings, sessions, keys_by_shard, levels, t_last, history)
        rng = np.random.default_rng(11)
        new = [
            Sample(m, lab, lvl * (1 + 0.01 * rng.standard_normal()), t_new + 1000)
            for m, lab, lvl in series
        ]
        context = (
            [
                Sample(
                    "thermal_trip_point_celsius",
                    {"device": d, "site": s, "sensor": "tj", "trip": "0", "type": "passive"},
                    99.0,
                    t_new,
                )
                for d, s in devices
            ]
            + [
                Sample(
                    "disk_total_bytes", {"device": d, "site": s, "disk": "nvme0n1p1"}, 6.4e10, t_new
                )
                for d, s in devices
            ]
            + [
                Sample("memory_total_bytes", {"device": d, "site": s}, 3.2e10, t_new)
                for d, s in devices
            ]
        )
        store = open_store(settings)
        started = time.perf_counter()
        store.write(new + context)
        write_s = time.perf_counter() - started
        print(f"wrote {len(new):,} new points in {write_s:.2f}s; running the cycle")
        lag = int(settings.analysis.ingest_lag_s * 1000)
        cold = _run_cycle(settings, sessions, store, shards, "bench-1", t_new + step + lag)
        # The steady state: the next minute's point, the shard states already in the workers.
        rng2 = np.random.default_rng(12)
        store.write(
            [
                Sample(m, lab, lvl * (1 + 0.01 * rng2.standard_normal()), t_new + step + 1000)
                for m, lab, lvl in series
            ]
        )
        steady = _run_cycle(settings, sessions, store, shards, "bench-2", t_new + 2 * step + lag)
        store.close()
        return {
            "devices": n_devices,
            "series": len(levels),
            "shards": shards,
            "points_read": steady["points"],
            "state_series": steady["state_series"],
            "cycle_seconds": steady["seconds"],
            "cycle_stage_seconds": steady["timings"],
            "cold_cycle_seconds": cold["seconds"],
            "cold_cycle_stage_seconds": cold["timings"],
            "influx_write_seconds": round(write_s, 2),
        }


def _run_cycle(
    settings: Any, sessions: Any, store: Any, shards: int, cycle_id: str, now: int
) -> dict[str, Any]:
    """Every shard of one cycle, one after the other (what two workers share on two cores)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    points = state_series = 0
    for shard in range(shards):
        with session_scope(sessions) as db:
            summary = service.run_shard(
                db=db,
                store=store,
                settings=settings.analysis,
                shard=shard,
                n_shards=shards,
                cycle_id=cycle_id,
                now_ms=now,
            )
        points += summary.points
        state_series += summary.series
        for name, seconds in summary.timings.items():
            timings[name] = round(timings.get(name, 0.0) + seconds, 3)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "timings": timings,
        "points": points,
        "state_series": state_series,
    }


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench analyze")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--history", type=int, default=120, help="warm-up minutes")
    parser.add_argument("--refit-series", type=int, default=40_000)
    parser.add_argument("--statsmodels-series", type=int, default=30)
    opts = parser.parse_args(args)
    result = cycle(opts.devices, opts.shards, opts.history)
    print(f"cycle: {result['cycle_seconds']}s for {result['series']:,} series")
    rng = np.random.default_rng(0)
    fit = refit(opts.refit_series, 20_000, rng)
    sm_wall, sm_cpu = statsmodels_rate(opts.statsmodels_series, rng)
    result["refit_series_per_s"] = round(fit["refit_series"] / fit["refit_seconds"])
    result["statsmodels_series_per_s"] = round(sm_wall, 2)
    result["refit_speedup"] = round(result["refit_series_per_s"] / sm_wall)
    result["refit_cpu_series_per_s"] = round(fit["refit_series"] / fit["refit_cpu_seconds"])
    result["statsmodels_cpu_series_per_s"] = round(sm_cpu, 2)
    result["refit_first_call_seconds"] = fit["refit_first_call_seconds"]
    result["blas_threads"] = fit["blas_threads"]
    return emit(result)
