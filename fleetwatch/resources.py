"""Per-process handles to the state DB and the metrics store, shared by a process's tasks.

A Celery worker process opens one engine and one store and reuses them across tasks; tests and
the demo hand in their own with :func:`use`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fleetwatch.db import make_engine, session_factory
from fleetwatch.settings import Settings
from fleetwatch.store import MetricsStore, open_store


@dataclass
class Resources:
    engine: Engine
    sessions: sessionmaker[Session]
    store: MetricsStore


_lock = threading.Lock()
_cache: dict[tuple[str, str, str], Resources] = {}


def _key(settings: Settings) -> tuple[str, str, str]:
    store = settings.store
    where = (
        store.influx_url + "/" + store.influx_database
        if store.backend == "influxdb"
        else str(settings.metrics_sqlite_path)
    )
    return settings.database_url, store.backend, where


def get(settings: Settings) -> Resources:
    key = _key(settings)
    with _lock:
        found = _cache.get(key)
        if found is None:
            engine = make_engine(settings.database_url)
            found = Resources(engine, session_factory(engine), open_store(settings))
            _cache[key] = found
        return found


def use(settings: Settings, resources: Resources) -> None:
    """Make these handles the ones tasks get for ``settings`` (demo, tests)."""
    with _lock:
        _cache[_key(settings)] = resources


def reset() -> None:
    with _lock:
        for found in _cache.values():
            found.store.close()
            found.engine.dispose()
        _cache.clear()
