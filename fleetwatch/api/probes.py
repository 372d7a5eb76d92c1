"""Liveness, readiness and Prometheus metrics of the API process (no token needed)."""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetwatch.api.errors import ErrorDetail, error_json, error_responses

REQUESTS = Counter(
    "fleetwatch_api_requests_total", "API requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "fleetwatch_api_request_seconds",
    "API request latency, first byte in to last byte out",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge("fleetwatch_api_requests_in_flight", "API requests being served")
INGESTED = Counter(
    "fleetwatch_api_ingest_samples_total", "Samples received by the ingest endpoint", ["outcome"]
)

router = APIRouter(tags=["probes"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    status: Literal["ok", "embedded", "error"]
    detail: str = Field("", examples=["SELECT 1 in 2 ms"])


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckResult] = Field(
        ..., examples=[{"database": {"status": "ok", "detail": ""}}]
    )


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="State DB, metrics store and broker are reachable",
    responses=error_responses(503),
)
def readyz(request: Request) -> Any:
    checks = {
        "database": _check(lambda: _ping_db(request)),
        "metrics_store": _check(lambda: request.app.state.store.ping()),
        "broker": _check_broker(request),
    }
    failed = {k: v for k, v in checks.items() if v.status == "error"}
    if failed:
        details = [ErrorDetail(loc=[name], msg=c.detail) for name, c in checks.items()]
        return error_json(
            503, f"not ready: {', '.join(sorted(failed))} unreachable", details=details
        )
    return Readiness(checks=checks)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _check(probe: Any) -> CheckResult:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # a probe reports any failure; it never fails itself
        return CheckResult(status="error", detail=f"{type(exc).__name__}: {exc}"[:500])
    return CheckResult(status="ok", detail=f"{(time.perf_counter() - started) * 1000:.0f} ms")


def _ping_db(request: Request) -> None:
    with request.app.state.session_factory() as db:
        db.execute(text("SELECT 1"))


def _check_broker(request: Request) -> CheckResult:
    celery = request.app.state.settings.celery
    if celery.embedded:
        return CheckResult(status="embedded", detail="tasks run in-process; no broker")

    def connect() -> None:
        from kombu.connection import Connection

        with Connection(celery.broker_url, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=2)

    return _check(connect)


class PrometheusMiddleware:
    """Counts, times and tracks in-flight requests, labelled by route template (not raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def _route_of(self, scope: Scope) -> str:
        """The path template a request matched (``/api/v1/devices/{device_id}``), from the OpenAPI.

        Labelling by template keeps the metric's cardinality bounded whatever paths clients send.
        """
        if self._templates is None:
            paths = list(scope["app"].openapi().get("paths", {}))
            paths.sort(key=lambda p: (p.count("{"), p))  # literal paths win over templates
            self._templates = [
                (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
                for p in paths
            ]
        path = scope.get("path", "")
        return next((t for rx, t in self._templates if rx.match(path)), "<unmatched>")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            IN_FLIGHT.dec()
            path = self._route_of(scope)
            method = scope.get("method", "")
            REQUESTS.labels(method, path, str(status)).inc()
            LATENCY.labels(method, path).observe(time.perf_counter() - started)
