"""``fleetwatch bench api``: ingest and query through the REST API over real HTTP on loopback.

The API runs as ``fleetwatch api`` in a subprocess (uvicorn). Concurrent clients post gzip line
protocol batches of 5,000 samples; then concurrent clients run device range queries (the
dashboard's device view) and the p50/p95 latency is measured. The baseline, in the same run, is
the store's own direct write throughput (validation + write of the same samples, in-process):
``ingest_vs_direct_ratio`` says what the HTTP hop, parsing, auth and rate limiting cost.
"""

from __future__ import annotations

import argparse
import gzip
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks._common import emit
from fleetwatch.api import service
from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.lineprotocol import encode
from fleetwatch.settings import Settings, load_settings
from fleetwatch.store import open_store
from fleetwatch.store.influxd_process import InfluxdProcess
from fleetwatch.telemetry import Sample, now_ms

METRIC = "temperature_celsius"


def workload(points: int, series: int, t0: int) -> list[Sample]:
    """Many devices with 8 sensors each, one point per series every 10 s."""
    labels = [
        {"device": f"orin-{i // 8:05d}", "site": f"site-{i % 7}", "sensor": f"zone{i % 8}"}
        for i in range(series)
    ]
    return [
        Sample(METRIC, labels[i % series], 40.0 + (i % 97) * 0.25, t0 + (i // series) * 10_000)
        for i in range(points)
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_toml(settings: Settings, path: Path, port: int) -> Path:
    store = settings.store
    lines = [
        f'data_dir = "{settings.data_dir}"',
        "[db]",
        f'url = "{settings.database_url}"',
        "[store]",
        f'backend = "{store.backend}"',
        f'influx_url = "{store.influx_url}"',
        f'influx_database = "{store.influx_database}"',
        "[celery]",
        "embedded = true",
        "[api]",
        f"port = {port}",
        'log_level = "warning"',
        "ingest_rate_samples_per_s = 100000000.0",
        "ingest_burst_samples = 100000000",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def api_server(config: Path, port: int) -> Iterator[str]:
    """``fleetwatch api`` in a subprocess on loopback, until the block ends."""
    exe = Path(sys.executable).with_name("fleetwatch")
    proc = subprocess.Popen(
        [str(exe), "-c", str(config), "api", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"fleetwatch api exited: {err[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("fleetwatch api did not start within 30 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ingest(url: str, token: str, batches: list[bytes], clients: int) -> float:
    lock = threading.Lock()
    pending = list(reversed(batches))

    def worker() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
        with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
            while True:
                with lock:
                    if not pending:
                        return
                    body = pending.pop()
                response = client.post("/api/v1/ingest", content=body)
                response.raise_for_status()
                if response.json()["rejected"]:
                    raise RuntimeError(f"samples rejected: {response.json()['errors'][:3]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    return time.perf_counter() - started


def _query_load(
    url: str,
    token: str,
    devices: list[str],
    start: int,
    end: int,
    count: int,
    clients: int,
    time_limit_s: float,
) -> list[float]:
    latencies: list[float] = []
    issued = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit_s
    params = {
        "metric": METRIC,
        "start": f"{start / 1000:.3f}",
        "end": f"{end / 1000:.3f}",
    }

    def worker(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = offset
            while time.monotonic() < deadline:
                with lock:
                    if issued[0] >= count:
                        return
                    issued[0] += 1
                began = time.perf_counter()
                response = client.get(
                    "/api/v1/metrics/range",
                    params={**params, "device": devices[i % len(devices)]},
                    headers={"Authorization": f"Bearer {token}"},
                )
                elapsed = time.perf_counter() - began
                response.raise_for_status()
                if not response.json()["series"]:
                    raise RuntimeError("range query returned no series")
                with lock:
                    latencies.append(elapsed)
                i += clients

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker, k) for k in range(clients)]:
            future.result()
    return latencies


def _token(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            _, clear = service.create_token(db=db, name="bench", scopes=["ingest", "read"])
    finally:
        engine.dispose()
    return clear


def _direct(settings: Settings, samples: list[Sample], batch: int) -> float:
    with open_store(settings) as store:
        started = time.perf_counter()
        for i in range(0, len(samples), batch):
            store.write(samples[i : i + batch])
        return time.perf_counter() - started


def _settings(tmp: Path, name: str, influx_url: str | None) -> Settings:
    store: dict[str, object] = {"sqlite_path": tmp / f"{name}.sqlite3"}
    if influx_url:
        store = {"backend": "influxdb", "influx_url": influx_url, "influx_database": name}
    return load_settings(
        data_dir=tmp, db={"url": f"sqlite:///{tmp / 'state.sqlite3'}"}, store=store
    )


def main(args: list[str]) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench api")
    parser.add_argument("--backend", choices=["sqlite", "influxdb"], default="sqlite")
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--series", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--query-clients", type=int, default=4)
    parser.add_argument("--query-time-limit", type=float, default=40.0)
    opts = parser.parse_args(args)

    t0 = now_ms() - 3 * 86_400_000
    samples = workload(opts.points, opts.series, t0)
    end = t0 + (opts.points // opts.series + 1) * 10_000
    batches = [
        gzip.compress(encode(samples[i : i + opts.batch]), compresslevel=1)
        for i in range(0, len(samples), opts.batch)
    ]
    result: dict[str, object] = {
        "backend": opts.backend,
        "points": opts.points,
        "series": opts.series,
        "batch": opts.batch,
        "ingest_clients": opts.clients,
        "query_clients": opts.query_clients,
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        influxd = InfluxdProcess(tmp / "influxd") if opts.backend == "influxdb" else None
        if influxd is not None:
            influxd.start()
        try:
            influx_url = influxd.url if influxd else None
            direct_s = _direct(_settings(tmp, "direct", influx_url), samples, opts.batch)
            print(f"direct store write: {opts.points / direct_s:,.0f} samples/s", flush=True)
            settings = _settings(tmp, "api", influx_url)
            migrations.upgrade(settings.database_url)
            token = _token(settings)
            port = _free_port()
            config = _config_toml(settings, tmp / "fleetwatch.toml", port)
            with api_server(config, port) as url:
                print(f"API at {url}; {len(batches)} gzip batches, {opts.clients} clients")
                ingest_s = _ingest(url, token, batches, opts.clients)
                print(f"API ingest: {opts.points / ingest_s:,.0f} samples/s", flush=True)
                devices = sorted({f"orin-{i // 8:05d}" for i in range(opts.series)})
                latencies = _query_load(
                    url,
                    token,
                    devices,
                    t0,
                    end,
                    opts.queries,
                    opts.query_clients,
                    opts.query_time_limit,
                )
        finally:
            if influxd is not None:
                influxd.cleanup()
    cuts = statistics.quantiles([x * 1000 for x in latencies], n=100)
    points_per_query = (opts.points // opts.series) * 8
    result.update(
        ingest_samples_per_s=round(opts.points / ingest_s),
        store_direct_samples_per_s=round(opts.points / direct_s),
        ingest_vs_direct_ratio=round(direct_s / ingest_s, 3),
        queries=len(latencies),
        points_per_query=points_per_query,
        query_p50_ms=round(cuts[49], 1),
        query_p95_ms=round(cuts[94], 1),
    )
    print(f"range queries: {len(latencies)}, p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms")
    return emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
