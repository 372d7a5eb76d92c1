"""Uplinks: how a batch leaves the gateway. Encoding is pure; sending is a thin HTTP adapter.

* :class:`InfluxUplink` writes gzip line protocol straight to InfluxDB (v1 ``/write`` or v2
  ``/api/v2/write``, precision ms).
* :class:`IngestUplink` posts the dense encoding (:mod:`fleetwatch.agent.codec`) to fleetwatch's
  ``POST /api/v1/ingest`` with a bearer token.

Both classify the answer the same way: 2xx accepted; 408, 429 and 5xx (and any connection error or
timeout) worth retrying; 401, 403 and 404 are a wrong token, URL or database, not a bad batch, so
they are retried too (dropping a week of data for an expired token would be the wrong trade);
413 asks for a smaller batch; any other 4xx means the batch itself is bad and must not be retried.
The standard library's http.client keeps the agent small.
"""

from __future__ import annotations

import gzip
import http.client
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from fleetwatch import lineprotocol
from fleetwatch.agent import codec
from fleetwatch.agent.config import AgentSettings
from fleetwatch.telemetry import Sample

Outcome = Literal["accepted", "retry", "rejected", "too_large"]
# Statuses that say nothing about the batch: the request may succeed later as it is.
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 425, 429})


@dataclass(frozen=True, slots=True)
class Request:
    """One encoded write: path with query, headers and body."""

    path: str
    headers: dict[str, str]
    body: bytes

    def header_bytes(self) -> int:
        return len(self.path) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + 40


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    status: int | None  # HTTP status, None when no answer came
    detail: str
    response: bytes = b""
    retry_after_s: float | None = None  # the receiver's Retry-After, when it gave one
    refused: int = 0  # samples a 2xx answer says it did not store (partial acceptance)
    refused_indices: tuple[int, ...] = ()  # their positions in the decoded batch, when listed


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def classify(status: int) -> Outcome:
    """What an HTTP status means for a batch (pure)."""
    if 200 <= status < 300:
        return "accepted"
    if status in RETRYABLE_STATUS or status >= 500 or status < 200:
        return "retry"
    if status == 413:
        return "too_large"
    return "rejected"


class Uplink(Protocol):
    """Something that encodes a batch and sends it; the agent does the rest."""

    def encode(self, samples: Sequence[Sample]) -> Request: ...

    def send(self, request: Request) -> SendResult: ...

    def close(self) -> None: ...


class HttpUplink:
    """A persistent HTTP/1.1 connection to one base URL, reopened after any failure."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"uplink URL {base_url!r} must be http(s)://host[:port][/path]")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def send(self, request: Request) -> SendResult:
        conn = self._connection()
        try:
            conn.request("POST", self.prefix + request.path, request.body, request.headers)
            response = conn.getresponse()
            body = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self.close()
            return SendResult("retry", None, f"{type(exc).__name__}: {exc}")
        if response.will_close:
            self.close()
        outcome = classify(response.status)
        detail = f"HTTP {response.status}"
        if outcome != "accepted":
            detail += f": {body[:300].decode(errors='replace').strip()}"
        wait = retry_after(response.getheader("Retry-After"))
        return SendResult(outcome, response.status, detail, body, retry_after_s=wait)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class InfluxUplink(HttpUplink):
    """gzip line protocol to InfluxDB 1.x ``/write`` or 2.x/3.x ``/api/v2/write``."""

    def __init__(self, settings: AgentSettings) -> None:
        super().__init__(settings.uplink_url, settings.timeout_s)
        token = settings.uplink_token.get_secret_value() if settings.uplink_token else None
        self.headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}
        if settings.influx_api == "v2":
            query = {
                "org": settings.influx_org,
                "bucket": settings.influx_bucket,
                "precision": "ms",
            }
            self.path = "/api/v2/write?" + urllib.parse.urlencode(query)
            if token:
                self.headers["Authorization"] = f"Token {token}"
        else:
            v1 = {"db": settings.influx_database, "precision": "ms"}
            if settings.influx_retention_policy:
                v1["rp"] = settings.influx_retention_policy
            if token and ":" in token:
                v1["u"], v1["p"] = token.split(":", 1)
            self.path = "/write?" + urllib.parse.urlencode(v1)

    def encode(self, samples: Sequence[Sample]) -> Request:
        body = gzip.compress(lineprotocol.encode(samples), compresslevel=6, mtime=0)
        return Request(self.path, self.headers, body)


class IngestUplink(HttpUplink):
    """The dense encoding to fleetwatch's ingest endpoint."""

    def __init__(self, settings: AgentSettings) -> None:
        super().__init__(settings.uplink_url, settings.timeout_s)
        self.path = settings.ingest_path
        self.headers = {"Content-Type": codec.CONTENT_TYPE}
        if settings.uplink_token is not None:
            self.headers["Authorization"] = f"Bearer {settings.uplink_token.get_secret_value()}"

    def encode(self, samples: Sequence[Sample]) -> Request:
        return Request(self.path, self.headers, codec.encode(samples))

    def send(self, request: Request) -> SendResult:
        result = super().send(request)
        if result.outcome != "accepted":
            return result
        refused, indices = partial_refusals(result.response)
        return SendResult(
            result.outcome, result.status, result.detail, result.response,
            refused=refused, refused_indices=indices,
        )  # fmt: skip


def partial_refusals(answer: bytes) -> tuple[int, tuple[int, ...]]:
    """(samples refused, their listed batch indices) from an ingest answer; (0, ()) if none."""
    try:
        parsed = json.loads(answer) if answer else {}
    except ValueError:
        return 0, ()
    if not isinstance(parsed, dict):
        return 0, ()
    refused = parsed.get("rejected", 0)
    errors = parsed.get("errors", [])
    indices = tuple(
        e["index"] for e in errors if isinstance(e, dict) and isinstance(e.get("index"), int)
    )
    return (refused if isinstance(refused, int) and refused > 0 else 0), indices


def build_uplink(settings: AgentSettings) -> InfluxUplink | IngestUplink:
    if settings.uplink == "ingest":
        return IngestUplink(settings)
    return InfluxUplink(settings)
