"""A real API and a real dashboard on loopback, seeded with a simulated fleet, and a headless
Chromium to look at them.

The API is the real application (``fleetwatch.api.app.create_app``) on a migrated SQLite state DB
and a SQLite metrics store, served by uvicorn in a thread. Devices and six hours of their metrics
come from the simulator (one Jetson gets dust in its heatsink, so its junction temperature
climbs); health, forecasts, anomalies, alerts and actions are written through the domains' ORM
models, as the analysis, alerting and actions workers would. The dashboard runs in another thread
and reads the API with a real bearer token.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
HOURS = 6
STEP_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fleet:
    """What the fixture seeded, for tests to assert against."""

    api_url: str
    token: str
    now: datetime
    hot_device: str
    hot_cohort: str
    sites: list[str]
    devices: list[str]
    alert_fingerprints: list[str] = field(default_factory=list)
    action_ids: list[int] = field(default_factory=list)
    seeded: set[str] = field(default_factory=set)
    session_factory: Any = None

    def get(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.get(f"{self.api_url}{path}", params=params, headers=headers, timeout=10)

    def has_route(self, path: str) -> bool:
        """Whether the API serves ``path`` (per its OpenAPI), e.g. ``/api/v1/alerts``."""
        paths = self.get("/openapi.json").json().get("paths", {})
        return path in paths


class _Uvicorn(threading.Thread):
    def __init__(self, app: Any, port: int) -> None:
        super().__init__(daemon=True)
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )

    def run(self) -> None:
        self.server.run()

    def start_and_wait(self) -> None:
        self.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(10)


def _simulate(now: datetime) -> tuple[Any, list[Any], str]:
    from fleetwatch.simulate import FaultSpec, SimConfig, Simulator

    sim = Simulator(
        SimConfig(devices=24, sites=3, seed=3, start=now - timedelta(hours=HOURS), step_s=STEP_S)
    )
    hot = next(d for d in sim.devices if d.hardware_model == "jetson-agx-orin")
    sim.inject(FaultSpec("dust", hot.id, start=now - timedelta(hours=3), severity=0.5))
    samples: list[Any] = []
    for _ in range(HOURS * 3600 // STEP_S):
        sim.step(1)
        samples.extend(sim.samples())
    return sim, samples, hot.id


def _seed_inventory(db: Any, sim: Any) -> None:
    from fleetwatch.fleet import service
    from fleetwatch.fleet.schemas import DeviceIn

    for d in sim.inventory():
        device = DeviceIn(
            id=d["id"], site_id=d["site"], hardware_model=d["hardware_model"],
            accelerator=d["accelerator"], firmware=d["firmware"], runtime=d["runtime"],
            node_name=d["node_name"],
        )  # fmt: skip
        service.upsert_device(db=db, device=device)
    service.mark_seen(db=db, seen={d.id: sim.now for d in sim.devices})


def _seed_analysis(db: Any, sim: Any, hot: str, now: datetime) -> None:
    from fleetwatch.analysis.models import AnomalyEpisode, DeviceHealth, Forecast

    for i, d in enumerate(sim.devices):
        risk = 0.92 if d.id == hot else (0.55 if i % 7 == 3 else 0.02 + (i % 5) * 0.03)
        status = "critical" if risk > 0.8 else "warning" if risk > 0.4 else "ok"
        signals = []
        if d.id == hot:
            detail = "tj reaches its 94.8 °C trip point in about 40 minutes (30–55)"
            signals = [
                {
                    "signal": "forecast",
                    "metric": "temperature_celsius",
                    "labels": {"sensor": "tj"},
                    "contribution": 0.8,
                    "detail": detail,
                }
            ]
        elif status == "warning":
            signals = [
                {
                    "signal": "peer",
                    "metric": "memory_used_bytes",
                    "labels": {},
                    "contribution": 0.5,
                    "detail": "memory use far above its cohort",
                }
            ]
        db.add(DeviceHealth(device_id=d.id, computed_at=now, risk_1h=risk / 3, risk_24h=risk,
                            health=1 - risk, status=status, top_signals=signals))  # fmt: skip
    db.add(
        Forecast(
            device_id=hot, metric="temperature_celsius", labels={"sensor": "tj"},
            series_key="temperature_celsius{sensor=tj}", limit_name="trip_point_0",
            limit_value=94.8, computed_at=now, will_cross=True, time_to_threshold_s=2400.0,
            lower_s=1800.0, upper_s=3300.0, crossing_at=now + timedelta(seconds=2400),
            current_value=float(_latest(sim, hot, "temperature_celsius", "tj")),
        )
    )  # fmt: skip
    db.add(
        AnomalyEpisode(
            device_id=hot, metric="temperature_celsius", labels={"sensor": "tj"},
            series_key="temperature_celsius{sensor=tj}", kind="anomaly",
            started_at=now - timedelta(hours=2), ended_at=now - timedelta(minutes=90),
            peak_score=7.5, last_score=3.0,
        )
    )  # fmt: skip


def _latest(sim: Any, device: str, metric: str, sensor: str) -> float:
    for s in sim.samples():
        if s.name == metric and s.device == device and s.labels.get("sensor") == sensor:
            return float(s.value)
    return 80.0


def _seed_alerts(db: Any, fleet: Fleet, sim: Any) -> None:
    from fleetwatch.alerting.matchers import fingerprint
    from fleetwatch.alerting.models import Alert

    rows = []
    for n, (device, rule, severity) in enumerate(
        [(fleet.hot_device, "ThermalTripSoon", "critical"),
         (sim.devices[3].id, "MemoryAboveCohort", "warning")]
    ):  # fmt: skip
        site = next(d.site for d in sim.devices if d.id == device)
        at = fleet.now - timedelta(minutes=30 + n * 10)
        labels = {"alertname": rule, "device": device, "site": site, "severity": severity}
        rows.append(Alert(
            fingerprint=fingerprint(labels), rule=rule, state="firing", severity=severity,
            device=device, site=site, labels=labels,
            annotations={"summary": f"{rule} on {device}"}, value=1.0, active_at=at,
            starts_at=at, last_evaluated=fleet.now, last_change_at=at,
        ))  # fmt: skip
    db.add_all(rows)
    db.flush()
    fleet.alert_fingerprints = [r.fingerprint for r in rows]


def _seed_actions(db: Any, fleet: Fleet, sim: Any) -> None:
    from fleetwatch.actions.models import Action, AuditEntry, DeviceActionState

    site = next(d.site for d in sim.devices if d.id == fleet.hot_device)
    action = Action(
        idempotency_key="dash-test-drain-1", policy="drain-before-thermal-trip", kind="drain",
        device_id=fleet.hot_device, site_id=site, state="pending", mode="act",
        reasons=["tj reaches its trip point in about 40 minutes"], lead_time_s=2400.0,
        created_at=fleet.now - timedelta(minutes=5), updated_at=fleet.now,
    )  # fmt: skip
    db.add(action)
    db.flush()
    db.add(AuditEntry(at=fleet.now - timedelta(minutes=5), action_id=action.id,
                      device_id=fleet.hot_device, site_id=site, policy=action.policy,
                      kind="drain", event="proposed", reasons=action.reasons))  # fmt: skip
    held = sim.devices[5]
    db.add(DeviceActionState(device_id=held.id, site_id=held.site, held=True,
                             held_at=fleet.now - timedelta(hours=1),
                             hold_expires_at=fleet.now + timedelta(hours=5)))  # fmt: skip
    fleet.action_ids = [action.id]


def _seed(factory: Any, fleet: Fleet, sim: Any) -> None:
    """Each domain in its own transaction: a domain whose tables are not there yet is left out."""
    from fleetwatch.db import session_scope

    with session_scope(factory) as db:
        _seed_inventory(db, sim)
    fleet.seeded.add("fleet")
    steps = (("analysis", lambda db: _seed_analysis(db, sim, fleet.hot_device, fleet.now)),
             ("alerting", lambda db: _seed_alerts(db, fleet, sim)),
             ("actions", lambda db: _seed_actions(db, fleet, sim)))  # fmt: skip
    for name, step in steps:
        try:
            with session_scope(factory) as db:
                step(db)
            fleet.seeded.add(name)
        except Exception as exc:  # a domain still being written: seed the others
            logging.getLogger(__name__).warning("not seeding %s: %s", name, exc)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    from fleetwatch.api import service as api_service
    from fleetwatch.api.app import create_app
    from fleetwatch.db import load_models, make_engine, migrations, session_factory, session_scope
    from fleetwatch.settings import load_settings
    from fleetwatch.store import open_store

    data = tmp_path_factory.mktemp("fleetwatch")
    settings = load_settings(None, data_dir=data)
    migrations.upgrade(settings.database_url)
    load_models()
    engine = make_engine(settings.database_url)
    factory = session_factory(engine)
    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    sim, samples, hot = _simulate(now)
    store = open_store(settings)
    store.write(samples)
    with session_scope(factory) as db:
        _, token = api_service.create_token(db=db, name="dashboard-tests", scopes=["admin"])
    port = free_port()
    hot_device = sim.device(hot)
    fleet = Fleet(
        api_url=f"http://127.0.0.1:{port}", token=token, now=now, hot_device=hot,
        hot_cohort="/".join(hot_device.cohort), sites=[s.name for s in sim.sites],
        devices=[d.id for d in sim.devices], session_factory=factory,
    )  # fmt: skip
    _seed(factory, fleet, sim)
    server = _Uvicorn(create_app(settings, store=store, session_factory=factory), port)
    server.start_and_wait()
    yield fleet
    server.stop()
    store.close()
    engine.dispose()


class _DashServer(threading.Thread):
    def __init__(self, flask_app: Any, port: int) -> None:
        super().__init__(daemon=True)
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", port, flask_app, threaded=True)

    def run(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.join(10)


@pytest.fixture(scope="session")
def dash_url(fleet: Fleet) -> Iterator[str]:
    from dashboards.app import create_dash_app

    # A long refresh period: tests drive the page, the clock must not race them.
    app = create_dash_app(fleet.api_url, fleet.token, refresh_s=3600)
    port = free_port()
    server = _DashServer(app.server, port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    app.fleetwatch_client.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.fail("headless Chromium and chromedriver are needed (scripts/test.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
