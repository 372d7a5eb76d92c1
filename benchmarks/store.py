"""``fleetwatch bench store``: metrics store write/read throughput on both backends.

InfluxDB figures come from a throwaway influxd 1.6 started for the run. The baseline is posting
the very same line-protocol bytes (gzip, 5,000-point batches) with plain HTTP in the same run:
the store's write path (validation + encoding + gzip + POST) should reach at least half of it.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._common import emit
from fleetwatch.lineprotocol import encode
from fleetwatch.settings import load_settings
from fleetwatch.store import open_store
from fleetwatch.store.influxd_process import InfluxdProcess
from fleetwatch.telemetry import Sample, now_ms


def workload(points: int, series: int, t0: int) -> list[Sample]:
    """Realistic label sets: many devices, a few sensors each, one point per series per 10 s."""
    labels = [
        {"device": f"orin-{i // 8:05d}", "site": f"site-{i % 7}", "sensor": f"zone{i % 8}"}
        for i in range(series)
    ]
    return [
        Sample(
            "temperature_celsius",
            labels[i % series],
            40.0 + (i % 97) * 0.25,
            t0 + (i // series) * 10_000,
        )
        for i in range(points)
    ]


def _raw_post(url: str, db: str, batches: list[bytes]) -> float:
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/query", data={"q": f'CREATE DATABASE "{db}"'})
        started = time.perf_counter()
        for body in batches:
            r = client.post(
                "/write",
                params={"db": db, "precision": "ms"},
                content=body,
                headers={"Content-Encoding": "gzip"},
            )
            r.raise_for_status()
        return time.perf_counter() - started


def main(args: list[str]) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench store")
    parser.add_argument("--points", type=int, default=500_000)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=5_000)
    opts = parser.parse_args(args)

    t0 = now_ms() - 7 * 86_400_000
    samples = workload(opts.points, opts.series, t0)
    end = t0 + (opts.points // opts.series + 1) * 10_000
    result: dict[str, object] = {"points": opts.points, "series": opts.series, "batch": opts.batch}

    with tempfile.TemporaryDirectory() as tmp, InfluxdProcess(Path(tmp) / "influxd") as influxd:
        batches = [
            gzip.compress(encode(samples[i : i + opts.batch]), compresslevel=1)
            for i in range(0, len(samples), opts.batch)
        ]
        print(f"influxd at {influxd.url}; posting {len(batches)} pre-serialised batches")
        raw_s = _raw_post(influxd.url, "bench_raw", batches)
        settings = load_settings(
            data_dir=Path(tmp),
            store={
                "backend": "influxdb",
                "influx_url": influxd.url,
                "influx_database": "bench",
                "batch_size": opts.batch,
            },
        )
        with open_store(settings) as store:
            started = time.perf_counter()
            store.write(samples)
            write_s = time.perf_counter() - started
            read_n, read_s = _read_all(store, opts.series, t0, end)
        result.update(
            influx_write_points_per_s=round(opts.points / write_s),
            influx_raw_post_points_per_s=round(opts.points / raw_s),
            influx_read_points_per_s=round(read_n / read_s),
        )
        result["influx_write_vs_raw_ratio"] = round(raw_s / write_s, 3)
        print(
            f"influx: store {result['influx_write_points_per_s']}/s, raw {result['influx_raw_post_points_per_s']}/s"
        )

        sq = load_settings(data_dir=Path(tmp) / "sqlite")
        with open_store(sq) as store:
            started = time.perf_counter()
            store.write(samples)
            write_s = time.perf_counter() - started
            read_n, read_s = _read_all(store, opts.series, t0, end)
        result.update(
            sqlite_write_points_per_s=round(opts.points / write_s),
            sqlite_read_points_per_s=round(read_n / read_s),
        )
    return emit(result)


def _read_all(store: object, series: int, start: int, end: int) -> tuple[int, float]:
    """Read every point back, one device at a time (how analysis and the API read)."""
    devices = sorted({f"orin-{i // 8:05d}" for i in range(series)})[:200]
    started = time.perf_counter()
    n = 0
    for device in devices:
        n += len(
            store.query_range(metric="temperature_celsius", device=device, start=start, end=end)
        )  # type: ignore[attr-defined]
    return n, time.perf_counter() - started
