"""The InfluxDB metrics store.

Writes go as gzip line protocol (precision ms) to ``/write`` (v1 API, InfluxDB 1.x and the v1
compatibility endpoints) or ``/api/v2/write`` through ``influxdb-client`` (v2). Reads are InfluxQL
through ``/query``, which 1.x, 2.x (DBRP) and 3.x all serve. 5xx answers, timeouts and refused
connections are retried with exponential backoff and jitter, a bounded number of times; a 4xx is
the caller's fault: it surfaces the server's message and is not retried.
"""

from __future__ import annotations

import gzip
import json
import queue
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd

from fleetwatch import selfmetrics
from fleetwatch.lineprotocol import encode
from fleetwatch.settings import StoreSettings
from fleetwatch.store import influxql
from fleetwatch.store.base import (
    Aggregation,
    Block,
    MetricsStore,
    StoreError,
    StoreUnavailable,
    TimeLike,
    WriteResult,
    check_query,
    frame,
    time_bounds,
)
from fleetwatch.telemetry import Sample, SampleError, SeriesKey, partition


class _Retryable(Exception):
    pass


class InfluxStore(MetricsStore):
    backend = "influxdb"

    def __init__(self, config: StoreSettings) -> None:
        self.config = config
        self.url = config.influx_url
        v1 = config.influx_api == "v1"
        self.database = config.influx_database if v1 else config.influx_bucket
        self.rp = config.influx_retention_policy if v1 else "autogen"
        headers: dict[str, str] = {}
        params: dict[str, str] = {}
        if config.influx_token is not None:
            headers["Authorization"] = f"Token {config.influx_token.get_secret_value()}"
        elif config.influx_username and config.influx_password is not None:
            params = {"u": config.influx_username, "p": config.influx_password.get_secret_value()}
        self._auth_params = params
        self._headers = headers
        self._http = self._client()
        # Clients of the read-ahead threads, each used by one thread at a time: httpcore may
        # close an idle connection that another thread has just been handed (EBADF).
        self._readers: queue.SimpleQueue[httpx.Client] = queue.SimpleQueue()
        self._reader_clients: list[httpx.Client] = []
        self._v2_write: Any = None
        self._tag_cache: dict[str, tuple[float, list[str]]] = {}
        if config.influx_api == "v2":
            self._v2_write = self._make_v2_writer()
        self.ensure_schema()

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers=self._headers,
            timeout=self.config.timeout_s,
            trust_env=False,
        )

    # -- schema ---------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the database/bucket and the raw-data retention policy if missing."""
        if self.config.influx_api == "v2":
            self._ensure_bucket()
            return
        db = influxql.quote_ident(self.database)
        rp = influxql.quote_ident(self.rp)
        self._query(f"CREATE DATABASE {db}", method="POST")
        policies = self._query(f"SHOW RETENTION POLICIES ON {db}")
        names = {row[0] for s in policies for row in s.get("values", [])}
        duration = self.config.influx_retention
        verb = "ALTER" if self.rp in names else "CREATE"
        replication = "" if verb == "ALTER" else " REPLICATION 1"
        self._query(
            f"{verb} RETENTION POLICY {rp} ON {db} "
            f"DURATION {_duration(duration)}{replication} DEFAULT",
            method="POST",
        )

    def _ensure_bucket(self) -> None:
        from influxdb_client import BucketRetentionRules, InfluxDBClient

        token = self.config.influx_token.get_secret_value() if self.config.influx_token else None
        with InfluxDBClient(url=self.url, token=token, org=self.config.influx_org) as client:
            buckets = client.buckets_api()
            if buckets.find_bucket_by_name(self.database) is None:
                seconds = _duration_seconds(self.config.influx_retention)
                rules = BucketRetentionRules(type="expire", every_seconds=seconds)
                buckets.create_bucket(
                    bucket_name=self.database, retention_rules=rules, org=self.config.influx_org
                )

    def _make_v2_writer(self) -> Callable[[bytes], None]:
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        token = self.config.influx_token.get_secret_value() if self.config.influx_token else None
        client = InfluxDBClient(
            url=self.url,
            token=token,
            org=self.config.influx_org,
            timeout=int(self.config.timeout_s * 1000),
            enable_gzip=self.config.gzip,
            retries=False,  # retries are ours, bounded and counted
        )
        write_api = client.write_api(write_options=SYNCHRONOUS)

        def write(body: bytes) -> None:
            try:
                write_api.write(
                    bucket=self.database,
                    org=self.config.influx_org,
                    record=body,
                    write_precision=WritePrecision.MS,
                )
            except ApiException as exc:
                if exc.status is not None and (exc.status >= 500 or exc.status == 429):
                    raise _Retryable(f"HTTP {exc.status}: {exc.body}") from exc
                raise StoreError(
                    f"InfluxDB rejected the write (HTTP {exc.status}): {exc.body}"
                ) from exc
            except (Urllib3Error, OSError) as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc

        self._v2_client = client
        return write

    # -- writes ---------------------------------------------------------------------------
    def write(self, samples: Iterable[Sample]) -> WriteResult:
        """Validate, encode and send batch by batch, the next batch prepared while the previous
        one is on the wire: influxd works on the other core meanwhile, so validation and
        serialisation do not add to the write time. A failure raises; re-sending the whole
        batch is safe (writes are idempotent)."""
        batch = samples if isinstance(samples, Sequence) else list(samples)
        result = WriteResult()
        started = time.perf_counter()
        try:
            self._pipeline(batch, result)
        except Exception:
            selfmetrics.STORE_WRITE_ERRORS.labels(self.backend).inc()
            raise
        selfmetrics.STORE_WRITE_SECONDS.labels(self.backend).observe(time.perf_counter() - started)
        selfmetrics.STORE_POINTS_WRITTEN.labels(self.backend).inc(result.written)
        return result

    def _write(self, samples: Sequence[Sample]) -> None:
        self._pipeline(samples, None)

    def _pipeline(self, samples: Sequence[Sample], result: WriteResult | None) -> None:
        size = self.config.batch_size
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx-write") as pool:
            pending: Future[None] | None = None
            for i in range(0, len(samples), size):
                chunk = samples[i : i + size]
                if result is not None:
                    part = partition(chunk)
                    result.errors.extend(SampleError(e.index + i, e.message) for e in part.errors)
                    chunk = part.valid
                    result.written += len(chunk)
                if not chunk:
                    continue
                body = encode(chunk)
                if pending is not None:
                    pending.result()  # raises the first failure; later batches are not sent
                pending = pool.submit(self.write_line_protocol, body)
            if pending is not None:
                pending.result()

    def write_line_protocol(self, body: bytes) -> None:
        """Send one already-encoded line protocol batch, retrying as the module docstring says."""
        if self._v2_write is not None:
            self._with_retries(lambda: self._v2_write(body))
            return
        payload = gzip.compress(body, compresslevel=1) if self.config.gzip else body
        self._with_retries(lambda: self._post_v1(payload))

    def _post_v1(self, payload: bytes) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.config.gzip:
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "rp": self.rp, "precision": "ms", **self._auth_params}
        try:
            response = self._http.post("/write", params=params, content=payload, headers=headers)
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 204:
            return
        message = _error_message(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"HTTP {response.status_code}: {message}")
        raise StoreError(f"InfluxDB rejected the write (HTTP {response.status_code}): {message}")

    def _with_retries(self, attempt: Callable[[], None]) -> None:
        delay = self.config.retry_backoff_s
        last = ""
        for n in range(self.config.max_retries + 1):
            try:
                attempt()
                return
            except _Retryable as exc:
                last = str(exc)
                if n == self.config.max_retries:
                    break
                selfmetrics.STORE_WRITE_RETRIES.labels(self.backend).inc()
                time.sleep(delay * (0.5 + random.random()))  # jitter spreads retrying writers
                delay *= 2
        raise StoreUnavailable(
            f"InfluxDB at {self.url} unavailable after "
            f"{self.config.max_retries + 1} attempts: {last}"
        )

    # -- reads ----------------------------------------------------------------------------
    def _query(
        self, q: str, *, method: str = "GET", client: httpx.Client | None = None
    ) -> list[dict[str, Any]]:
        http = self._http if client is None else client
        params = {"db": self.database, "q": q, "epoch": "ms", **self._auth_params}
        started = time.perf_counter()
        try:
            if method == "POST":
                response = http.post("/query", data=params)
            else:
                response = http.get("/query", params=params)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        finally:
            selfmetrics.STORE_QUERY_SECONDS.labels(self.backend).observe(
                time.perf_counter() - started
            )
        if response.status_code >= 500:
            raise StoreUnavailable(f"InfluxDB query failed: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise StoreError(f"InfluxDB refused the query: {_error_message(response)}")
        series: list[dict[str, Any]] = []
        for result in response.json().get("results", []):
            if "error" in result:
                raise StoreError(f"InfluxDB query error: {result['error']}")
            series.extend(result.get("series", []))
        return series

    def _from(self, metric: str) -> str:
        return ".".join(influxql.quote_ident(p) for p in (self.database, self.rp, metric))

    def _blocks(self, series: list[dict[str, Any]]) -> list[Block]:
        blocks: list[Block] = []
        for s in series:
            tags = {k: v for k, v in (s.get("tags") or {}).items() if v != ""}
            cols = s["columns"]
            ti, vi = cols.index("time"), cols.index("value")
            points = [(row[ti], row[vi]) for row in s.get("values", []) if row[vi] is not None]
            blocks.append((tags, [p[0] for p in points], [p[1] for p in points]))
        return blocks

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
        where = [f"time >= {start_ms}ms", f"time < {end_ms}ms"]
        where += influxql.where_labels(device, labels)
        if sites is not None:
            where.append(influxql.any_of("site", sites))
        if step_s is None:
            return self._raw(metric, where)
        select = f'{agg}("value") AS "value"'
        group = f"GROUP BY time({influxql.duration_ms(step_s)}), * fill(none)"
        q = f"SELECT {select} FROM {self._from(metric)} WHERE {' AND '.join(where)} {group}"
        return frame(self._blocks(self._query(q)))

    def _tag_keys(self, metric: str, client: httpx.Client | None = None) -> list[str]:
        """Tag keys of a measurement, remembered for a minute (they change rarely; a new key
        is picked up within the minute)."""
        cached = self._tag_cache.get(metric)
        if cached is not None and time.monotonic() - cached[0] < 60:
            return cached[1]
        keys = self._query(
            f"SHOW TAG KEYS FROM {influxql.quote_ident(self.rp)}.{influxql.quote_ident(metric)}",
            client=client,
        )
        tags = sorted({row[0] for s in keys for row in s.get("values", [])})
        self._tag_cache[metric] = (time.monotonic(), tags)
        return tags

    def _raw(self, metric: str, where: list[str]) -> pd.DataFrame:
        """Raw points with the tags selected as columns: one flat result instead of one JSON
        object per series, which is what makes reading a quarter-million points fast."""
        return _raw_frame(*self._fetch_raw(metric, where))

    def _fetch_raw(
        self, metric: str, where: list[str], client: httpx.Client | None = None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        tags = self._tag_keys(metric, client)
        columns = ", ".join(['"value"', *(influxql.quote_ident(t) for t in tags)])
        q = f"SELECT {columns} FROM {self._from(metric)} WHERE {' AND '.join(where)}"
        return self._query(q, client=client), tags

    def _fetch_ahead(self, metric: str, where: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """``_fetch_raw`` on a read-ahead thread, with a client no other thread is using."""
        try:
            client = self._readers.get_nowait()
        except queue.Empty:
            client = self._client()
            self._reader_clients.append(client)
        try:
            return self._fetch_raw(metric, where, client)
        finally:
            self._readers.put(client)

    def query_ranges(
        self,
        *,
        metrics: Sequence[str],
        start: TimeLike,
        end: TimeLike,
        sites: Sequence[str] | None = None,
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """Raw points of several metrics, one query each, handed over in order while the next
        ones are already on the wire: influxd answers while the caller works on the last
        metric, and two queries in flight let it use a second core when one is free."""
        start_ms, end_ms = time_bounds(start, end)
        check_query("mean", None, start_ms, end_ms)
        where = [f"time >= {start_ms}ms", f"time < {end_ms}ms"]
        if sites is not None:
            where.append(influxql.any_of("site", sites))
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="influx-read")
        try:
            pending = [(m, pool.submit(self._fetch_ahead, m, where)) for m in metrics]
            for metric, future in pending:
                yield metric, _raw_frame(*future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def latest(
        self,
        *,
        metric: str,
        device: str | None = None,
        labels: Mapping[str, str] | None = None,
        sites: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        where = influxql.where_labels(device, labels)
        if sites is not None:
            where.append(influxql.any_of("site", sites))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        q = f'SELECT last("value") AS "value" FROM {self._from(metric)}{clause} GROUP BY *'
        return frame(self._blocks(self._query(q)))

    def list_series(
        self, *, metric: str | None = None, device: str | None = None, site: str | None = None
    ) -> list[SeriesKey]:
        q = f"SHOW SERIES ON {influxql.quote_ident(self.database)}"
        if metric is not None:
            q += f" FROM {influxql.quote_ident(self.rp)}.{influxql.quote_ident(metric)}"
        where = influxql.where_labels(device, {"site": site} if site is not None else None)
        if where:
            q += f" WHERE {' AND '.join(where)}"
        keys: list[SeriesKey] = []
        for s in self._query(q):
            for (key,) in s.get("values", []):
                name, labels = parse_series_key(key)
                keys.append((name, tuple(sorted(labels.items()))))
        return sorted(keys)

    def count(self, metric: str | None = None) -> int:
        target = self._from(metric) if metric else f"{self._from('x').rsplit('.', 1)[0]}./.*/"
        series = self._query(f'SELECT count("value") FROM {target}')
        return sum(int(v[1]) for s in series for v in s.get("values", []) if v[1] is not None)

    def ping(self) -> None:
        try:
            response = self._http.get("/ping")
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        if response.status_code != 204:
            raise StoreUnavailable(f"InfluxDB /ping answered HTTP {response.status_code}")

    def close(self) -> None:
        self._http.close()
        for client in self._reader_clients:
            client.close()
        if self._v2_write is not None:
            self._v2_client.close()


def _raw_frame(series: list[dict[str, Any]], tags: list[str]) -> pd.DataFrame:
    """The common read result from a raw query's flat rows (time, value, then the tags)."""
    rows = [row for s in series for row in s.get("values", [])]
    if not rows:
        return frame([])
    names = series[0]["columns"]
    df = pd.DataFrame(rows, columns=names)
    df = df[df["value"].notna()]
    df["time"] = pd.to_datetime(df["time"].to_numpy(dtype="int64"), unit="ms", utc=True)
    df["value"] = df["value"].astype("float64")
    present = [t for t in tags if t in df.columns and df[t].notna().any()]
    for tag in present:
        df[tag] = df[tag].where(df[tag].notna() & (df[tag] != ""), None)
    df = df[["time", "value", *present]]
    return df.sort_values([*present, "time"], kind="stable", na_position="first").reset_index(
        drop=True
    )


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """Split an escaped series key (``m,tag=v\\,1``) into measurement and tags."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "\\" and i + 1 < len(key) and key[i + 1] in ", =":
            current.append(key[i + 1])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(current))
            current = []
        elif ch == "=" and parts:
            current.append("\x00")  # unescaped '=' separates a tag key from its value
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    tags = {}
    for part in parts[1:]:
        k, _, v = part.partition("\x00")
        tags[k] = v.replace("\x00", "=")
    return parts[0], tags


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return response.text.strip()[:500]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:500]
    return str(body)[:500]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str) -> str:
    if text.upper() == "INF":
        return "INF"
    _duration_seconds(text)  # validates
    return text


def _duration_seconds(text: str) -> int:
    if text.upper() == "INF":
        return 0
    try:
        return int(text[:-1]) * _UNITS[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise StoreError(
            f"retention {text!r} must be a number followed by s, m, h, d or w"
        ) from None
