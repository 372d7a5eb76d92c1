"""One error body everywhere, no leaked internals; health, readiness and Prometheus metrics."""

from __future__ import annotations

import socket
from pathlib import Path

from fastapi import APIRouter

from fleetwatch.api.app import create_app
from fleetwatch.api.errors import ErrorResponse
from fleetwatch.settings import load_settings
from tests.api.conftest import ApiEnv, TestClient, bearer


def _assert_error_body(body: dict[str, object], code: str) -> ErrorResponse:
    parsed = ErrorResponse.model_validate(body)
    assert set(body) == {"error"}
    assert parsed.error.code == code
    return parsed


def test_unknown_path_and_method_use_the_error_body(env: ApiEnv) -> None:
    _assert_error_body(env.client.get("/api/v1/nope").json(), "not_found")
    response = env.client.delete("/healthz")
    assert response.status_code == 405
    _assert_error_body(response.json(), "method_not_allowed")


def test_validation_error_says_what_and_where(env: ApiEnv) -> None:
    token = env.token("read")
    response = env.client.get(
        "/api/v1/devices", params={"limit": 5000, "offset": -1}, headers=bearer(token)
    )
    assert response.status_code == 422
    error = _assert_error_body(response.json(), "validation_error").error
    locs = {tuple(d.loc): d.msg for d in error.details}
    assert ("query", "limit") in locs and "1000" in locs[("query", "limit")]
    assert ("query", "offset") in locs
    assert "query.limit" in error.message


def test_body_validation_error_points_into_the_body(env: ApiEnv) -> None:
    response = env.client.put(
        "/api/v1/devices/d1",
        json={"site_id": "s", "hardware_model": "x" * 500, "extra": 1},
        headers=bearer(env.token("admin")),
    )
    assert response.status_code == 422
    locs = [tuple(d["loc"]) for d in response.json()["error"]["details"]]
    assert ("body", "hardware_model") in locs and ("body", "extra") in locs


def test_internal_error_leaks_no_internals(env: ApiEnv) -> None:
    boom = APIRouter()

    @boom.get("/boom")
    def explode() -> None:
        raise RuntimeError("secret-connection-string postgres://u:pw@db")

    env.client.app.include_router(boom)  # type: ignore[attr-defined]
    response = env.client.get("/boom")
    assert response.status_code == 500
    _assert_error_body(response.json(), "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def test_content_length_over_limit_is_413_before_reading(env: ApiEnv) -> None:
    limit = env.settings.api.max_request_bytes
    response = env.client.put(
        "/api/v1/sites/a",
        content=b"{" + b" " * limit + b"}",
        headers={**bearer(env.token("admin")), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    _assert_error_body(response.json(), "payload_too_large")


def test_healthz_and_readyz_embedded(env: ApiEnv) -> None:
    assert env.client.get("/healthz").json() == {"status": "ok"}
    ready = env.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["checks"]["database"]["status"] == "ok"
    assert ready["checks"]["metrics_store"]["status"] == "ok"
    assert ready["checks"]["broker"]["status"] == "embedded"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readyz_reports_an_unreachable_broker(env: ApiEnv, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        db={"url": env.settings.database_url},
        celery={"broker_url": f"redis://127.0.0.1:{_free_port()}/0"},
    )
    app = create_app(settings, store=env.store, session_factory=env.factory)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    error = _assert_error_body(response.json(), "unavailable").error
    checks = {d.loc[0]: d.msg for d in error.details}
    assert "broker" in error.message
    assert checks["database"].endswith("ms") and checks["broker"]
    assert "broker" in checks and "database" not in error.message


def test_readyz_with_the_real_redis_broker(env: ApiEnv, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        db={"url": env.settings.database_url},
        celery={"broker_url": "redis://127.0.0.1:6379/13"},
    )
    app = create_app(settings, store=env.store, session_factory=env.factory)
    with TestClient(app) as client:
        ready = client.get("/readyz").json()
    assert ready["checks"]["broker"]["status"] == "ok"


def test_prometheus_metrics_count_requests_by_route(env: ApiEnv) -> None:
    token = env.token("read")
    for _ in range(3):
        env.client.get("/api/v1/devices/abc", headers=bearer(token))
    text = env.client.get("/metrics").text
    assert "fleetwatch_api_requests_in_flight" in text
    assert "fleetwatch_api_request_seconds_bucket" in text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("fleetwatch_api_requests_total{")
        and 'route="/api/v1/devices/{device_id}"' in ln
        and 'status="404"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
