"""Devices, sites and metrics reads: filters, pagination, health, downsampling, compact series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetwatch.analysis.models import DeviceHealth
from fleetwatch.api.metrics import auto_step_s
from fleetwatch.db import session_scope
from fleetwatch.telemetry import Sample, now_ms
from tests.api.conftest import ApiEnv, bearer

DEVICES = [
    ("orin-1", "plant-a", "jetson-agx-orin", "jetpack-6.1"),
    ("orin-2", "plant-a", "jetson-agx-orin", "jetpack-5.1"),
    ("orin-3", "plant-b", "jetson-agx-orin", "jetpack-6.1"),
    ("coral-1", "plant-a", "coral-devboard", None),
    ("coral-2", "plant-b", "coral-devboard", None),
]


def _register(env: ApiEnv) -> dict[str, str]:
    admin = bearer(env.token("admin"))
    for device_id, site, model, firmware in DEVICES:
        body = {"site_id": site, "hardware_model": model, "firmware": firmware}
        response = env.client.put(f"/api/v1/devices/{device_id}", json=body, headers=admin)
        assert response.status_code == 200, response.text
    with session_scope(env.factory) as db:
        db.add(DeviceHealth(device_id="orin-1", status="critical", health=0.1, risk_24h=0.9))
        db.add(DeviceHealth(device_id="coral-2", status="warning", health=0.6, risk_24h=0.4))
    return bearer(env.token("read"))


def _ids(page: dict[str, object]) -> list[str]:
    return [d["id"] for d in page["items"]]  # type: ignore[index, union-attr]


def test_device_list_filters_and_pagination(env: ApiEnv) -> None:
    read = _register(env)
    get = env.client.get
    everything = get("/api/v1/devices", headers=read).json()
    assert everything["total"] == 5
    assert _ids(everything) == ["coral-1", "coral-2", "orin-1", "orin-2", "orin-3"]
    page = get("/api/v1/devices", params={"limit": 2, "offset": 2}, headers=read).json()
    assert _ids(page) == ["orin-1", "orin-2"] and page["total"] == 5
    site_a = get("/api/v1/devices", params={"site": "plant-a"}, headers=read).json()
    assert _ids(site_a) == ["coral-1", "orin-1", "orin-2"]
    cohort = "jetson-agx-orin/jetpack-6.1/plant-a"
    by_cohort = get("/api/v1/devices", params={"cohort": cohort}, headers=read).json()
    assert _ids(by_cohort) == ["orin-1"]
    assert by_cohort["items"][0]["cohort"] == cohort
    firmware = get("/api/v1/devices", params={"firmware": "jetpack-6.1"}, headers=read).json()
    assert _ids(firmware) == ["orin-1", "orin-3"]
    critical = get("/api/v1/devices", params={"status": "critical"}, headers=read).json()
    assert _ids(critical) == ["orin-1"]
    assert critical["items"][0]["health_summary"]["risk_24h"] == 0.9
    bad = get("/api/v1/devices", params={"cohort": "just-one-part"}, headers=read)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["query", "cohort"]


def test_get_device_and_404(env: ApiEnv) -> None:
    read = _register(env)
    device = env.client.get("/api/v1/devices/orin-2", headers=read).json()
    assert device["site_id"] == "plant-a" and device["health_summary"] is None
    missing = env.client.get("/api/v1/devices/ghost", headers=read)
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "not_found",
        "message": "device 'ghost' not found",
        "details": [],
    }


def test_put_device_updates_and_creates_site(env: ApiEnv) -> None:
    read = _register(env)
    admin = bearer(env.token("admin"))
    body = {"site_id": "plant-c", "hardware_model": "jetson-orin-nano", "node_name": "n7"}
    updated = env.client.put("/api/v1/devices/orin-2", json=body, headers=admin).json()
    assert updated["site_id"] == "plant-c" and updated["node_name"] == "n7"
    sites = env.client.get("/api/v1/sites", headers=read).json()
    assert [s["id"] for s in sites] == ["plant-a", "plant-b", "plant-c"]
    assert env.client.get("/api/v1/sites/plant-c", headers=read).status_code == 200
    assert env.client.get("/api/v1/sites/nowhere", headers=read).status_code == 404
    site = env.client.put(
        "/api/v1/sites/plant-c", json={"name": "C", "region": "eu"}, headers=admin
    )
    assert site.json()["name"] == "C"


def _week_of_minutes(env: ApiEnv, end_ms: int) -> None:
    start_ms = end_ms - 7 * 86400 * 1000
    samples = [
        Sample("cpu_ratio", {"device": dev, "site": "s"}, (ts // 60_000) % 100 / 100, ts)
        for dev in ("d1", "d2")
        for ts in range(start_ms, end_ms, 60_000)
    ]
    env.store.write(samples)


def test_range_query_downsamples_a_week_automatically(env: ApiEnv) -> None:
    read = bearer(env.token("read"))
    end_ms = (now_ms() // 3_600_000) * 3_600_000
    _week_of_minutes(env, end_ms)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    params = {
        "metric": "cpu_ratio",
        "device": "d1",
        "start": (end - timedelta(days=7)).isoformat(),
        "end": end.isoformat(),
    }
    answer = env.client.get("/api/v1/metrics/range", params=params, headers=read).json()
    assert answer["auto_step"] is True
    assert answer["step_s"] == auto_step_s(7 * 86400, 2000) == 600
    [series] = answer["series"]
    assert series["labels"] == {"device": "d1", "site": "s"}
    assert len(series["timestamps"]) == len(series["values"]) == 1008  # 7 days of 10 minutes
    assert answer["points"] == 1008
    assert all(
        b - a == 600_000
        for a, b in zip(series["timestamps"], series["timestamps"][1:], strict=False)
    )
    # An explicit step and aggregation are honoured.
    hourly = env.client.get(
        "/api/v1/metrics/range", params={**params, "step": 3600, "agg": "max"}, headers=read
    ).json()
    assert hourly["auto_step"] is False and len(hourly["series"][0]["values"]) == 168
    assert max(hourly["series"][0]["values"]) == 0.99
    # A short range comes back raw.
    short = {**params, "start": (end - timedelta(minutes=10)).isoformat()}
    raw = env.client.get("/api/v1/metrics/range", params=short, headers=read).json()
    assert raw["step_s"] is None and raw["auto_step"] is False
    assert len(raw["series"][0]["values"]) == 10


def test_range_query_errors(env: ApiEnv) -> None:
    read = bearer(env.token("read"))
    get = env.client.get
    naive = get(
        "/api/v1/metrics/range",
        params={"metric": "m", "start": "2026-01-01T00:00:00"},
        headers=read,
    )
    assert naive.status_code == 422
    assert naive.json()["error"]["details"][0]["loc"] == ["query", "start"]
    tiny = get("/api/v1/metrics/range", params={"metric": "m", "step": 0.01}, headers=read).json()
    assert tiny["auto_step"] is True and tiny["step_s"] == 1.0  # one hour / 11,000 -> 1 s
    typo = get("/api/v1/metrics/range", params={"metric": "m", "devcie": "d1"}, headers=read)
    assert typo.status_code == 422
    assert typo.json()["error"]["details"] == [
        {"loc": ["query", "devcie"], "msg": "unknown query parameter"}
    ]
    label = get("/api/v1/metrics/range", params={"metric": "m", "label": "nokey"}, headers=read)
    assert label.json()["error"]["details"][0]["loc"] == ["query", "label", 0]
    backwards = get(
        "/api/v1/metrics/range",
        params={"metric": "m", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        headers=read,
    )
    assert backwards.status_code == 422


def test_latest_and_series_listing(env: ApiEnv) -> None:
    read = bearer(env.token("read"))
    t = now_ms()
    env.store.write(
        [
            Sample("temp_celsius", {"device": "d1", "site": "s", "sensor": "tj"}, 60.0, t - 2000),
            Sample("temp_celsius", {"device": "d1", "site": "s", "sensor": "tj"}, 61.0, t - 1000),
            Sample("temp_celsius", {"device": "d1", "site": "s", "sensor": "gpu"}, 55.0, t - 1000),
            Sample("temp_celsius", {"device": "d2", "site": "s", "sensor": "tj"}, 70.0, t - 1000),
        ]
    )
    latest = env.client.get(
        "/api/v1/metrics/latest",
        params={"metric": "temp_celsius", "device": "d1", "label": "sensor=tj"},
        headers=read,
    ).json()
    assert latest["series"] == [
        {
            "labels": {"device": "d1", "site": "s", "sensor": "tj"},
            "timestamp": t - 1000,
            "value": 61.0,
        }
    ]
    series = env.client.get("/api/v1/metrics/series", params={"device": "d1"}, headers=read).json()
    assert series["total"] == 2
    assert sorted(s["labels"]["sensor"] for s in series["items"]) == ["gpu", "tj"]
