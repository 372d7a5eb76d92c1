"""``fleetwatch bench models``: throughput of the analysis core and its forecast quality.

1. Full re-fit over 24 h of 1-minute history (1,440 points) for many series, in chunks: the
   vectorised detector plus the time-to-threshold forecaster, next to statsmodels' damped
   Holt (``ExponentialSmoothing(trend="add", damped_trend=True).fit()``) fitted per series on
   a sample in the same run. Both run with BLAS on one thread: a single fit's matrices are
   tiny, and OpenBLAS threads only spin and fight for the cores; with them, statsmodels' rate
   halved whenever another job used a core, which made the ratio swing from 550x to 2,300x
   with the machine's load rather than with either implementation. The detector's first
   call, which loads (or compiles) its numba kernel, is timed apart as
   ``refit_first_call_seconds``.
2. Incremental cycle: 250,000 series x 1 new point through ``update`` from a warm state.
3. Forecast error (minutes) at 120/60/30/15 min before a known crossing on simulated thermal
   runaway, disk fill and memory leak, and false "will cross within 2 h" calls on healthy
   series, next to Prometheus' ``predict_linear`` over 1 h computed in the same run.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from benchmarks._common import emit
from models import detect, forecast_time_to_threshold, update
from models.evaluation import compare_with_predict_linear

POINTS = 1440
START = 1_700_000_000.0


def _history(rng: np.random.Generator, n_series: int, n_points: int) -> np.ndarray:
    """Temperature-like series: level, daily cycle, a slow random walk and noise."""
    t = np.arange(n_points)[np.newaxis, :]
    level = rng.uniform(30, 70, (n_series, 1))
    cycle = rng.uniform(1, 6, (n_series, 1)) * np.sin(
        2 * np.pi * (t + rng.uniform(0, 1440, (n_series, 1))) / 1440
    )
    walk = np.cumsum(rng.normal(0, 0.02, (n_series, n_points)), axis=1)
    return level + cycle + walk + rng.normal(0, 0.5, (n_series, n_points))


def refit(n_series: int, chunk: int, rng: np.random.Generator) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    timestamps = START + 60.0 * np.arange(POINTS)
    # The first call loads the compiled recurrence (or compiles it, without a cache): a
    # one-off cost of a worker process, reported on its own rather than spread over a rate.
    started = time.perf_counter()
    detect(_history(rng, 2, POINTS), timestamps)
    warmup = time.perf_counter() - started
    elapsed = 0.0
    cpu = 0.0
    done = 0
    while done < n_series:
        size = min(chunk, n_series - done)
        values = _history(rng, size, POINTS)
        with threadpool_limits(limits=1, user_api="blas"):
            started, cpu_started = time.perf_counter(), time.process_time()
            detect(values, timestamps)
            forecast_time_to_threshold(values, 95.0)
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
        done += size
        print(f"  refit {done:,}/{n_series:,} series: {done / elapsed:,.0f} series/s", flush=True)
    return {
        "refit_series": n_series,
        "refit_seconds": round(elapsed, 2),
        "refit_cpu_seconds": round(cpu, 2),
        "refit_first_call_seconds": round(warmup, 3),
        "blas_threads": 1,
    }


def statsmodels_rate(n_series: int, rng: np.random.Generator) -> tuple[float, float]:
    """Series per second of wall-clock time and of CPU time (BLAS on one thread, see above)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from threadpoolctl import threadpool_limits

    values = _history(rng, n_series, POINTS)
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        for row in values:
            ExponentialSmoothing(row, trend="add", damped_trend=True).fit()
    wall = time.perf_counter() - started
    return n_series / wall, n_series / (time.process_time() - cpu_started)


def incremental(n_series: int, warm_points: int, rng: np.random.Generator) -> float:
    """Seconds for one cycle of one new point per series, from a state past warm-up."""
    history = _history(rng, n_series, warm_points + 1)
    timestamps = START + 60.0 * np.arange(warm_points + 1)
    _, state = detect(history[:, :warm_points], timestamps[:warm_points])
    started = time.perf_counter()
    update(state, history[:, warm_points], timestamps[warm_points:])
    return time.perf_counter() - started


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench models")
    parser.add_argument("--series", type=int, default=40_000, help="series in the re-fit")
    parser.add_argument("--chunk", type=int, default=20_000, help="series per chunk")
    parser.add_argument("--statsmodels-series", type=int, default=50)
    parser.add_argument("--incremental-series", type=int, default=250_000)
    parser.add_argument("--evaluation-series", type=int, default=200, help="per kind")
    options = parser.parse_args(args)
    rng = np.random.default_rng(0)

    print(f"re-fit of {options.series:,} series x {POINTS} points", flush=True)
    result: dict[str, Any] = refit(options.series, options.chunk, rng)
    result["refit_series_per_s"] = round(result["refit_series"] / result["refit_seconds"], 1)
    print(f"statsmodels damped Holt on {options.statsmodels_series} series", flush=True)
    wall_rate, cpu_rate = statsmodels_rate(options.statsmodels_series, rng)
    result["statsmodels_series_per_s"] = round(wall_rate, 2)
    result["refit_speedup"] = round(result["refit_series_per_s"] / wall_rate, 1)
    # CPU-time figures too: on a shared machine wall-clock rates swing with the neighbours.
    result["refit_cpu_series_per_s"] = round(result["refit_series"] / result["refit_cpu_seconds"])
    result["statsmodels_cpu_series_per_s"] = round(cpu_rate, 2)
    result["refit_cpu_speedup"] = round(result["refit_cpu_series_per_s"] / cpu_rate, 1)
    print(f"incremental update of {options.incremental_series:,} series x 1 point", flush=True)
    result["incremental_seconds_250k"] = round(incremental(options.incremental_series, 60, rng), 3)
    result["incremental_series"] = options.incremental_series
    print("forecast quality vs predict_linear", flush=True)
    quality = compare_with_predict_linear(options.evaluation_series)
    for key, value in quality.items():
        print(f"  {key}: {value}")
    result.update(quality)
    return emit(result)
