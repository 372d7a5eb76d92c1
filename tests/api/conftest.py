"""API test fixtures: a migrated state DB (SQLite or PostgreSQL), a metrics store, the app, tokens."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fleetwatch.api import service
from fleetwatch.api.app import create_app
from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.settings import Settings, load_settings
from fleetwatch.store.sqlite import SQLiteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@dataclass
class ApiEnv:
    """Everything a test needs around one app instance."""

    settings: Settings
    factory: sessionmaker[Session]
    store: SQLiteStore
    client: TestClient

    def token(self, *scopes: str, site: str | None = None, name: str = "test") -> str:
        with session_scope(self.factory) as db:
            _, clear = service.create_token(db=db, name=name, scopes=scopes, site=site)
        return clear

    def token_id(self, clear: str) -> str:
        return clear.split("_")[1]

    def revoke(self, clear: str) -> None:
        with session_scope(self.factory) as db:
            service.revoke_token(db=db, token_id=self.token_id(clear))


def build_env(tmp_path: Path, db_url: str, **api: object) -> Iterator[ApiEnv]:
    migrations.upgrade(db_url)
    settings = load_settings(
        data_dir=tmp_path, db={"url": db_url}, celery={"embedded": True}, api=api
    )
    engine = make_engine(db_url)
    store = SQLiteStore(tmp_path / "metrics.sqlite3")
    factory = session_factory(engine)
    app = create_app(settings, store=store, session_factory=factory)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiEnv(settings, factory, store, client)
    store.close()
    engine.dispose()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ApiEnv]:
    """The app on an embedded SQLite state DB and SQLite metrics store."""
    yield from build_env(tmp_path, f"sqlite:///{tmp_path / 'state.sqlite3'}")


@pytest.fixture
def env_any_db(tmp_path: Path, state_db_url: str) -> Iterator[ApiEnv]:
    """The app on each state DB backend (SQLite and the local PostgreSQL)."""
    yield from build_env(tmp_path, state_db_url)


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator[Callable[..., ApiEnv]]:
    """Build an app with custom ``[api]`` settings: ``make_env(ingest_rate_samples_per_s=10)``."""
    generators: list[Iterator[ApiEnv]] = []

    def make(**api: object) -> ApiEnv:
        sub = tmp_path / f"env{len(generators)}"
        sub.mkdir()
        gen = build_env(sub, f"sqlite:///{sub / 'state.sqlite3'}", **api)
        generators.append(gen)
        return next(gen)

    yield make
    for gen in generators:
        next(gen, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
