"""Metrics store: one interface, two backends (InfluxDB, embedded SQLite)."""

from __future__ import annotations

from fleetwatch.settings import Settings
from fleetwatch.store.base import (
    AGGREGATIONS,
    Aggregation,
    MetricsStore,
    StoreError,
    StoreUnavailable,
    WriteResult,
)

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "MetricsStore",
    "StoreError",
    "StoreUnavailable",
    "WriteResult",
    "open_store",
]


def open_store(settings: Settings) -> MetricsStore:
    """The metrics store the settings name; InfluxDB gets its database and policy created."""
    if settings.store.backend == "influxdb":
        from fleetwatch.store.influx import InfluxStore

        return InfluxStore(settings.store)
    from fleetwatch.store.sqlite import SQLiteStore

    return SQLiteStore(settings.metrics_sqlite_path)
