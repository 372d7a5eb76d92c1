"""Fixtures of the alerting tests: a controllable clock, migrated state DBs, a loopback receiver."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from fleetwatch.alerting.demo import LocalReceiver
from fleetwatch.db import make_engine, migrations, session_factory
from fleetwatch.fleet.models import Device, Site
from fleetwatch.plugins import PluginRegistry
from fleetwatch.settings import Settings, load_settings
from fleetwatch.store.sqlite import SQLiteStore

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The injected clock: tests move time, nothing sleeps."""

    now: datetime = T0

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alerting-template") / "state.sqlite3"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@dataclass
class StateDB:
    url: str
    factory: sessionmaker[Session]
    engines: list[Any] = field(default_factory=list)

    def session(self) -> Session:
        return self.factory()

    def reopen(self) -> StateDB:
        """A brand-new engine and session factory on the same database (a process restart)."""
        engine = make_engine(self.url)
        self.engines.append(engine)
        return StateDB(self.url, session_factory(engine), self.engines)


def _open(url: str) -> StateDB:
    engine = make_engine(url)
    return StateDB(url, session_factory(engine), [engine])


@pytest.fixture
def sqlite_db(migrated_sqlite: Path, tmp_path: Path) -> Iterator[StateDB]:
    path = tmp_path / "state.sqlite3"
    shutil.copy(migrated_sqlite, path)
    state = _open(f"sqlite:///{path}")
    yield state
    for engine in state.engines:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(
    request: pytest.FixtureRequest, migrated_sqlite: Path, tmp_path: Path
) -> Iterator[StateDB]:
    """The state DB on SQLite and on the real PostgreSQL, migrated with alembic."""
    if request.param == "sqlite":
        path = tmp_path / "state.sqlite3"
        shutil.copy(migrated_sqlite, path)
        url = f"sqlite:///{path}"
    else:
        url = str(request.getfixturevalue("pg_url"))
        migrations.upgrade(url)
    state = _open(url)
    yield state
    for engine in state.engines:
        engine.dispose()


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "metrics.sqlite3")
    yield store
    store.close()


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as server:
        yield server


@pytest.fixture(scope="session")
def registry() -> PluginRegistry:
    return PluginRegistry.from_entry_points(["fleetwatch.notifiers"])


def write_rules(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def make_settings(
    tmp_path: Path, config: dict[str, Any] | None = None, **alerting: Any
) -> Settings:
    if config is not None:
        alerting["rules_file"] = write_rules(tmp_path / "rules.yaml", config)
    alerting.setdefault("allowed_http_hosts", ["127.0.0.1"])
    alerting.setdefault("retry_backoff_s", 0.01)
    return load_settings(data_dir=tmp_path, alerting=alerting)


def seed_fleet(db: Session, sites: dict[str, int], *, last_seen: datetime) -> list[str]:
    """Sites with n devices each, all last seen at ``last_seen``; returns device ids."""
    db.execute(insert(Site), [{"id": s, "name": s, "created_at": last_seen} for s in sites])
    rows = [
        {
            "id": f"{site}-dev{i:05d}",
            "site_id": site,
            "hardware_model": "jetson-orin-nano",
            "labels": {},
            "registered_at": last_seen,
            "updated_at": last_seen,
            "last_seen_at": last_seen,
        }
        for site, n in sites.items()
        for i in range(n)
    ]
    for start in range(0, len(rows), 500):
        db.execute(insert(Device), rows[start : start + 500])
    db.commit()
    return [r["id"] for r in rows]
