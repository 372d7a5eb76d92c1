"""The embedded metrics store: one SQLite file, no server."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fleetwatch import selfmetrics
from fleetwatch.store.base import (
    Aggregation,
    Block,
    MetricsStore,
    StoreUnavailable,
    TimeLike,
    check_query,
    frame,
    time_bounds,
)
from fleetwatch.telemetry import Sample, SeriesKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    UNIQUE (metric, labels)
);
CREATE INDEX IF NOT EXISTS series_device ON series (device, metric);
CREATE INDEX IF NOT EXISTS series_metric ON series (metric);
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
"""

_AGG_SQL = {"mean": "AVG(p.value)", "max": "MAX(p.value)", "min": "MIN(p.value)"}


def _labels_json(labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(labels), separators=(",", ":"), ensure_ascii=False)


class SQLiteStore(MetricsStore):
    backend = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection guarded by a lock: the API serves reads from several threads.
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._series_ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._labels_by_id: dict[int, dict[str, str]] = {}

    def _series_id(self, name: str, labels: tuple[tuple[str, str], ...]) -> int:
        key = (name, labels)
        sid = self._series_ids.get(key)
        if sid is not None:
            return sid
        text = _labels_json(labels)
        label_map = dict(labels)
        self._conn.execute(
            "INSERT OR IGNORE INTO series (metric, labels, device, site) VALUES (?, ?, ?, ?)",
            (name, text, label_map.get("device", ""), label_map.get("site", "")),
        )
        row = self._conn.execute(
            "SELECT id FROM series WHERE metric = ? AND labels = ?", (name, text)
        ).fetchone()
        sid = int(row[0])
        self._series_ids[key] = sid
        return sid

    def _write(self, samples: Sequence[Sample]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                series_id = self._series_id
                rows = [
                    (series_id(s.name, tuple(sorted(s.labels.items()))), s.timestamp_ms, s.value)
                    for s in samples
                ]
                self._conn.executemany(
                    "INSERT INTO points (series_id, ts, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
                    rows,
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                self._series_ids.clear()  # ids created in the rolled-back transaction are gone
                raise StoreUnavailable(f"SQLite write failed: {exc}") from exc

    def _series_filter(
        self,
        metric: str | None,
        device: str | None,
        labels: Mapping[str, str] | None,
        site: str | None = None,
    ) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if metric is not None:
            clauses.append("s.metric = ?")
            params.append(metric)
        if device is not None:
            clauses.append("s.device = ?")
            params.append(device)
        if site is not None:
            clauses.append("s.site = ?")
            params.append(site)
        for key, value in sorted((labels or {}).items()):
            clauses.append("json_extract(s.labels, ?) = ?")
            params.extend([f'$."{key}"', value])
        return (" AND ".join(clauses) or "1"), params

    def _select(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        started = time.perf_counter()
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        selfmetrics.STORE_QUERY_SECONDS.labels(self.backend).observe(time.perf_counter() - started)
        return rows

    def query_range(
        self,
        *,
        metric: str,
        start: TimeLike,
        end: TimeLike,
        device: str | None = None,
        labels: Mapping[str, str] | None = None,
        step_s: float | None = None,
        agg: Aggregation = "mean",
        sites: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        start_ms, end_ms = time_bounds(start, end)
        check_query(agg, step_s, start_ms, end_ms)
        where, params = self._series_filter(metric, device, labels)
        if sites is not None:
            where += f" AND s.site IN ({', '.join('?' * len(sites))})" if sites else " AND 0"
            params.extend(sites)
        if step_s is None:
            sql = (
                "SELECT p.series_id, p.ts, p.value "
                "FROM points p JOIN series s ON s.id = p.series_id "
                f"WHERE {where} AND p.ts >= ? AND p.ts < ?"
            )
        else:
            step_ms = max(1, round(step_s * 1000))
            # SQLite returns the bare column of the row holding MAX(ts): the last value.
            value_sql = "p.value" if agg == "last" else _AGG_SQL[agg]
            extra = ", MAX(p.ts)" if agg == "last" else ""
            sql = (
                f"SELECT s.id, (p.ts / {step_ms}) * {step_ms} AS bucket, {value_sql}{extra} "
                "FROM points p JOIN series s ON s.id = p.series_id "
                f"WHERE {where} AND p.ts >= ? AND p.ts < ? GROUP BY s.id, bucket"
            )
        rows = self._select(sql, [*params, start_ms, end_ms])
        if step_s is not None and agg == "last":
            rows = [r[:3] for r in rows]  # drop the MAX(ts) that picked the row
        return frame(self._blocks(rows))

    def latest(
        self,
        *,
        metric: str,
        device: str | None = None,
        labels: Mapping[str, str] | None = None,
        sites: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        where, params = self._series_filter(metric, device, labels)
        if sites is not None:
            where += f" AND s.site IN ({', '.join('?' * len(sites))})" if sites else " AND 0"
            params.extend(sites)
        sql = (
            "SELECT s.id, MAX(p.ts), p.value FROM points p JOIN series s ON s.id = p.series_id "
            f"WHERE {where} GROUP BY s.id"
        )
        return frame(self._blocks(self._select(sql, params)))

    def _blocks(self, rows: list[tuple[object, ...]]) -> list[Block]:
        """Group (series_id, ts, value) rows per series, labels parsed once per series."""
        grouped: dict[Any, tuple[list[Any], list[Any]]] = {}
        for sid, ts, value in rows:
            entry = grouped.get(sid)
            if entry is None:
                entry = grouped[sid] = ([], [])
            entry[0].append(ts)
            entry[1].append(value)
        return [(self._labels(sid), ts, values) for sid, (ts, values) in grouped.items()]

    def _labels(self, sid: int) -> dict[str, str]:
        labels = self._labels_by_id.get(sid)
        if labels is None:
            with self._lock:
                row = self._conn.execute(
                    "SELECT labels FROM series WHERE id = ?", (sid,)
                ).fetchone()
            labels = self._labels_by_id[sid] = json.loads(row[0])
        return labels

    def list_series(
        self, *, metric: str | None = None, device: str | None = None, site: str | None = None
    ) -> list[SeriesKey]:
        where, params = self._series_filter(metric, device, None, site)
        rows = self._select(f"SELECT s.metric, s.labels FROM series s WHERE {where}", params)
        keys = [(str(m), tuple(sorted(json.loads(str(lab)).items()))) for m, lab in rows]
        return sorted(keys)

    def count(self, metric: str | None = None) -> int:
        if metric is None:
            rows = self._select("SELECT COUNT(*) FROM points", [])
        else:
            rows = self._select(
                "SELECT COUNT(*) FROM points p JOIN series s ON s.id = p.series_id "
                "WHERE s.metric = ?",
                [metric],
            )
        count: Any = rows[0][0]
        return int(count)

    def ping(self) -> None:
        try:
            self._select("SELECT 1", [])
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.path} unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
