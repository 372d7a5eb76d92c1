"""Shared fixtures: a real influxd for the session, a real PostgreSQL database, fresh stores.

Nothing here is faked: the InfluxDB tests talk to an ``influxd`` started for the session on a
free loopback port with a temporary data dir, and the state DB tests to the local PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fleetwatch.settings import Settings, load_settings
from fleetwatch.store import MetricsStore, open_store
from fleetwatch.store.influxd_process import InfluxdProcess

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def influxd() -> Iterator[InfluxdProcess]:
    if shutil.which("influxd") is None and not Path("/usr/bin/influxd").exists():
        pytest.fail("influxd is not installed; scripts/test.sh installs Debian's influxdb package")
    proc = InfluxdProcess()
    proc.start()
    yield proc
    proc.cleanup()


def _unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = _unique("fleetwatch_test")
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def state_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty state database URL on each backend (migrate it yourself)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


def influx_settings(influxd: InfluxdProcess, tmp_path: Path, **store: object) -> Settings:
    """Settings for a fresh InfluxDB database of one test on the session's influxd."""
    return load_settings(
        data_dir=tmp_path,
        store={
            "backend": "influxdb",
            "influx_url": influxd.url,
            "influx_database": _unique("fw"),
            "max_retries": 1,
            "retry_backoff_s": 0.05,
            **store,
        },
    )


@pytest.fixture(params=["sqlite", "influxdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsStore]:
    """A fresh metrics store on each backend; both must pass the same contract."""
    if request.param == "sqlite":
        settings = load_settings(data_dir=tmp_path)
    else:
        settings = influx_settings(request.getfixturevalue("influxd"), tmp_path)
    with open_store(settings) as opened:
        yield opened
