"""Fixtures of the actions tests: a migrated state DB (SQLite, PostgreSQL), the fake Kubernetes
API server with the real client pointed at it, and helpers to seed a fleet."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.orm import Session

from fleetwatch.actions import alerting_adapter
from fleetwatch.actions.config import KubernetesActuatorSettings
from fleetwatch.actions.kubernetes import KubernetesActuator
from fleetwatch.analysis.models import DeviceHealth, Forecast
from fleetwatch.db import load_models, make_engine, migrations, session_factory
from fleetwatch.fleet.models import Device, Site
from tests.fakes.kubernetes_api import FakeKubernetesApi, node, pod

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy (alembic per test would dominate the run time)."""
    path = tmp_path_factory.mktemp("actions-template") / "state.sqlite3"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_db_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    target = tmp_path / "state.sqlite3"
    shutil.copy(migrated_sqlite, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, sqlite_db_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_db_url
    url = str(request.getfixturevalue("pg_url"))
    migrations.upgrade(url)
    return url


@pytest.fixture
def db_factory(sqlite_db_url: str) -> Iterator[Any]:
    load_models()
    engine = make_engine(sqlite_db_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def db(db_factory: Any) -> Iterator[Session]:
    session = db_factory()
    yield session
    session.close()


@pytest.fixture
def any_db(db_url: str) -> Iterator[Session]:
    """A session on each backend (SQLite and PostgreSQL)."""
    load_models()
    engine = make_engine(db_url)
    session = session_factory(engine)()
    yield session
    session.close()
    engine.dispose()


@pytest.fixture
def k8s() -> Iterator[FakeKubernetesApi]:
    with FakeKubernetesApi() as api:
        yield api


@pytest.fixture
def kube(k8s: FakeKubernetesApi) -> Iterator[KubernetesActuator]:
    actuator = KubernetesActuator(KubernetesActuatorSettings(host=k8s.url))
    yield actuator
    actuator.close()


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stand in for alerting's ``announce`` (its own tests cover delivery) and record the calls."""
    calls: list[dict[str, Any]] = []

    def announce(**kwargs: Any) -> None:
        calls.append(kwargs)

    stand_in = SimpleNamespace(announce=announce, list_alerts=lambda **_: [])
    monkeypatch.setattr(alerting_adapter, "_service", lambda: stand_in)
    return calls


def add_device(
    db: Session,
    device_id: str,
    site: str = "plant-a",
    *,
    node_name: str | None = "",
    runtime: str | None = "k3s",
    risk_1h: float = 0.0,
    risk_24h: float = 0.0,
    status: str = "ok",
    forecast_s: float | None = None,
    metric: str = "temperature_celsius",
    computed_at: datetime = T0,
) -> Device:
    if db.get(Site, site) is None:
        db.add(Site(id=site, name=site))
        db.flush()
    device = Device(
        id=device_id,
        site_id=site,
        hardware_model="jetson-orin-nano",
        runtime=runtime,
        node_name=device_id if node_name == "" else node_name,
    )
    db.add(device)
    db.flush()
    db.add(
        DeviceHealth(
            device_id=device_id,
            computed_at=computed_at,
            risk_1h=risk_1h,
            risk_24h=risk_24h,
            health=1 - risk_24h,
            status=status,
            top_signals=[],
        )
    )
    if forecast_s is not None:
        db.add(
            Forecast(
                device_id=device_id,
                metric=metric,
                labels={"sensor": "tj"},
                series_key=f"{metric}{{sensor=tj}}",
                limit_name="trip_point_0",
                limit_value=95.0,
                computed_at=computed_at,
                will_cross=True,
                time_to_threshold_s=forecast_s,
                lower_s=forecast_s * 0.7,
                upper_s=forecast_s * 1.4,
                current_value=88.0,
            )
        )
    db.flush()
    return device


def set_health(db: Session, device_id: str, *, risk_1h: float, status: str) -> None:
    row = db.get(DeviceHealth, device_id)
    assert row is not None
    row.risk_1h, row.status = risk_1h, status
    db.flush()


def seed_nodes(api: FakeKubernetesApi, names: list[str], pods_per_node: int = 2) -> None:
    """Each node gets ReplicaSet pods plus one DaemonSet pod (which a drain must leave)."""
    for name in names:
        api.state.nodes[name] = node(name)
        for i in range(pods_per_node):
            api.state.add_pod(pod(f"{name}-app-{i}", name, labels={"app": f"app-{name}"}))
        api.state.add_pod(pod(f"{name}-ds", name, namespace="kube-system", owner_kind="DaemonSet"))


def later(seconds: float, start: datetime = T0) -> datetime:
    return start + timedelta(seconds=seconds)
