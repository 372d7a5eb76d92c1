"""``fleetwatch bench dashboard``: server time to build the fleet overview for 10,000 devices and a
device page of 7 days x 20 series at 1-minute resolution.

A real API (the FastAPI app on a migrated SQLite state DB and a SQLite metrics store, served by
uvicorn on loopback) is seeded in the same run. What is timed is exactly what the pages'
refresh callbacks do: fetch from that API through the dashboard's client, build the figures and
tables, and serialise the figures to JSON as Dash does before answering the browser. The API's
own time is included (it is most of it) and reported apart as ``*_api_seconds``: the sum of the
requests' wall times, which exceeds the page's wall time when its calls go out together.

Options: ``--devices N`` (10000), ``--days D`` (7), ``--repeat R`` (3).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io as pio

from benchmarks._common import emit
from dashboards.client import FleetwatchClient
from dashboards.pages import device as device_page
from dashboards.pages import overview

MODELS = ("jetson-agx-orin", "jetson-orin-nx", "jetson-orin-nano", "gateway-coral-pcie")
FIRMWARE = ("fw-a", "fw-b", "fw-c")
# Four metrics with five series each make the device page's twenty series.
DEVICE_METRICS = (
    ("temperature_celsius", "sensor", 60.0, 8.0),
    ("power_watts", "rail", 12.0, 3.0),
    ("memory_used_bytes", "module", 2.0e9, 2.0e8),
    ("cpu_utilization_ratio", "core", 0.5, 0.2),
)


class TimedClient(FleetwatchClient):
    """The dashboard's client, adding up the wall time spent waiting on the API."""

    api_seconds = 0.0

    def _request(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super()._request(*args, **kwargs)
        finally:
            self.api_seconds += time.perf_counter() - started


def _seed_state(factory: Any, devices: int, now: datetime) -> str:
    from sqlalchemy import insert

    from fleetwatch.analysis.models import DeviceHealth
    from fleetwatch.api import service as api_service
    from fleetwatch.db import session_scope
    from fleetwatch.fleet.models import Device, Site

    rng = np.random.default_rng(7)
    sites = [f"site-{i:02d}" for i in range(20)]
    risks = rng.beta(0.6, 6.0, size=devices)
    with session_scope(factory) as db:
        db.execute(insert(Site), [{"id": s, "name": s, "created_at": now} for s in sites])
        db.execute(insert(Device), [
            {"id": f"dev-{i:05d}", "site_id": sites[i % len(sites)],
             "hardware_model": MODELS[i % len(MODELS)], "firmware": FIRMWARE[i % len(FIRMWARE)],
             "registered_at": now, "updated_at": now, "last_seen_at": now, "labels": {}}
            for i in range(devices)
        ])  # fmt: skip
        db.execute(insert(DeviceHealth), [
            {"device_id": f"dev-{i:05d}", "computed_at": now, "risk_1h": float(r) / 3,
             "risk_24h": float(r), "health": 1 - float(r),
             "status": "critical" if r > 0.6 else "warning" if r > 0.3 else "ok",
             "top_signals": [{"signal": "forecast", "metric": "temperature_celsius",
                              "labels": {"sensor": "tj"}, "contribution": float(r),
                              "detail": "tj reaches its 94.8 °C trip point in about 3 hours"}]}
            for i, r in enumerate(risks)
        ])  # fmt: skip
        _, token = api_service.create_token(db=db, name="bench", scopes=["admin"])
    return token


def _seed_metrics(store: Any, device: str, site: str, days: int, now: datetime) -> int:
    from fleetwatch.telemetry import Sample

    minutes = days * 24 * 60
    start_ms = int((now - timedelta(days=days)).timestamp() * 1000)
    stamps = start_ms + np.arange(minutes, dtype=np.int64) * 60_000
    rng = np.random.default_rng(11)
    written = 0
    for metric, label, level, spread in DEVICE_METRICS:
        for k in range(5):
            walk = (
                level
                + spread * np.sin(np.arange(minutes) / 720.0 + k)
                + rng.normal(0, spread / 10, minutes)
            )
            labels = {"device": device, "site": site, label: f"{label}{k}"}
            batch = [
                Sample(metric, labels, float(v), int(t)) for t, v in zip(stamps, walk, strict=True)
            ]
            written += store.write_valid(batch)
    return minutes


class _Api(threading.Thread):
    def __init__(self, app: Any) -> None:
        super().__init__(daemon=True)
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        )

    def run(self) -> None:
        self.server.run()

    def url(self) -> str:
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("API did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


def _time(repeat: int, fn: Any, client: TimedClient) -> tuple[float, float, Any]:
    """Median wall and API seconds over ``repeat`` runs of ``fn``, and its last result."""
    walls, apis, result = [], [], None
    for _ in range(repeat):
        client.api_seconds = 0.0
        started = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - started)
        apis.append(client.api_seconds)
    return statistics.median(walls), statistics.median(apis), result


def _overview(client: TimedClient) -> Any:
    view = overview.build_overview(client)
    outputs = overview.render(view)
    pio.to_json(outputs[2], validate=False)  # Dash serialises the figure before answering
    return view


def _device(client: TimedClient, device: str, metrics: list[str]) -> Any:
    page = device_page.build_device_page(client, device, span="7d", chosen=metrics)
    pio.to_json(page.series, validate=False)
    pio.to_json(page.timeline, validate=False)
    return page


def run(devices: int, days: int, repeat: int, workdir: Path) -> dict[str, Any]:
    from fleetwatch.api.app import create_app
    from fleetwatch.db import load_models, make_engine, migrations, session_factory
    from fleetwatch.settings import load_settings
    from fleetwatch.store import open_store

    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    settings = load_settings(None, data_dir=workdir)
    migrations.upgrade(settings.database_url)
    load_models()
    engine = make_engine(settings.database_url)
    factory = session_factory(engine)
    print(f"seeding {devices:,} devices and their health ...", flush=True)
    token = _seed_state(factory, devices, now)
    store = open_store(settings)
    print(f"seeding 20 series x {days} days at 1-minute resolution ...", flush=True)
    raw = _seed_metrics(store, "dev-00000", "site-00", days, now)
    api = _Api(create_app(settings, store=store, session_factory=factory))
    api.start()
    client = TimedClient(api.url(), token, timeout_s=60)
    try:
        print("timing the fleet overview ...", flush=True)
        ov_s, ov_api_s, view = _time(repeat, lambda: _overview(client), client)
        print(f"  {ov_s:.3f} s ({ov_api_s:.3f} s waiting on the API)", flush=True)
        print("timing the device page ...", flush=True)
        metrics = [m for m, *_ in DEVICE_METRICS]
        dv_s, dv_api_s, page = _time(repeat, lambda: _device(client, "dev-00000", metrics), client)
        print(f"  {dv_s:.3f} s ({dv_api_s:.3f} s waiting on the API)", flush=True)
    finally:
        client.close()
        api.server.should_exit = True
        api.join(10)
        store.close()
        engine.dispose()
    return {
        "overview_seconds": round(ov_s, 4),
        "device_page_seconds": round(dv_s, 4),
        "overview_api_seconds": round(ov_api_s, 4),
        "device_page_api_seconds": round(dv_api_s, 4),
        "devices": devices,
        "devices_drawn": _cells(view),
        "series": page.series_drawn,
        "points_per_series_raw": raw,
        "points_per_series_drawn": page.points_drawn,
        "repeat": repeat,
        "measured": "page refresh work: API fetch through the dashboard client + figure/table "
        "build + figure JSON serialisation, median of repeats; *_api_seconds sums the requests' "
        "wall times (concurrent calls overlap)",
    }


def _cells(view: Any) -> int:
    if not view.grid.data or view.grid.data[0].customdata is None:
        return 0
    return sum(1 for row in view.grid.data[0].customdata for d in row if d)


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench dashboard")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="fleetwatch-bench-dashboard-") as tmp:
        result = run(opts.devices, opts.days, opts.repeat, Path(tmp))
    return emit(result)
