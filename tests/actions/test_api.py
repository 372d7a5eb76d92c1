"""The actions, hints and scheduler-extender endpoints through the real app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from fleetwatch.actions import service
from fleetwatch.actions.config import ActionsSettings, Policy, PolicyCondition
from fleetwatch.actions.models import DeviceActionState
from fleetwatch.api import service as api_service
from fleetwatch.api.app import create_app
from fleetwatch.db import utcnow
from fleetwatch.settings import load_settings
from tests.actions.conftest import add_device

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def app_client(
    sqlite_db_url: str, db: Session, tmp_path: Path
) -> Iterator[tuple[TestClient, Session]]:
    settings = load_settings(
        data_dir=tmp_path,
        db={"url": sqlite_db_url},
        actions={
            "require_approval": ["drain"],
            "mode": "act",
            "workloads": [
                {"name": "detector", "site": "plant-a", "replicas": 6, "per_replica_load": 1.0}
            ],
        },
    )
    now = utcnow()
    add_device(db, "edge-1", computed_at=now)
    add_device(db, "edge-2", computed_at=now, risk_24h=0.02)
    add_device(
        db, "edge-3", computed_at=now, forecast_s=1800
    )  # tj reaches its trip point in 30 min
    add_device(db, "edge-4", computed_at=now)
    db.add(DeviceActionState(device_id="edge-4", site_id="plant-a", cordoned=True, cordoned_at=now))
    db.commit()
    app = create_app(settings)
    with TestClient(app) as client:
        _, token = api_service.create_token(db=db, name="ops", scopes=["read", "actions"])
        _, reader = api_service.create_token(db=db, name="viewer", scopes=["read"])
        db.commit()
        client.headers["Authorization"] = f"Bearer {token}"
        client.reader = {"Authorization": f"Bearer {reader}"}  # type: ignore[attr-defined]
        yield client, db


def test_extender_filter_round_trips_kube_scheduler_json(
    app_client: tuple[TestClient, Session],
) -> None:
    client, _ = app_client
    args = json.loads((FIXTURES / "extender_args.json").read_text())
    answer = client.post("/scheduler/v1/filter", json=args)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}
    kept = [n["metadata"]["name"] for n in body["Nodes"]["items"]]
    assert kept == ["edge-1", "edge-2", "edge-3", "cloud-1"]  # unknown cloud-1 passes
    assert body["Nodes"]["items"][0] == args["Nodes"]["items"][0]  # nodes come back untouched
    assert list(body["FailedNodes"]) == ["edge-4"]
    assert "cordoned by fleetwatch" in body["FailedNodes"]["edge-4"]
    assert (
        body["NodeNames"] is None
        and body["Error"] == ""
        and body["FailedAndUnresolvableNodes"] == {}
    )


def test_extender_filter_by_node_names(app_client: tuple[TestClient, Session]) -> None:
    client, _ = app_client
    args = json.loads((FIXTURES / "extender_args_node_names.json").read_text())
    body = client.post("/scheduler/v1/filter", json=args).json()
    assert body["Nodes"] is None
    assert body["NodeNames"] == ["edge-1", "edge-2", "edge-3", "cloud-1"]


def test_extender_prioritize_ranks_the_hot_node_below_its_siblings(
    app_client: tuple[TestClient, Session],
) -> None:
    client, _ = app_client
    args = json.loads((FIXTURES / "extender_args.json").read_text())
    answer = client.post("/scheduler/v1/prioritize", json=args)
    assert answer.status_code == 200
    ranked = answer.json()
    assert all(set(item) == {"Host", "Score"} for item in ranked)
    scores = {item["Host"]: item["Score"] for item in ranked}
    assert all(isinstance(s, int) and 0 <= s <= 10 for s in scores.values())
    assert scores["edge-1"] == 10 and scores["edge-2"] == 10
    assert scores["edge-3"] < scores["edge-1"]
    assert scores["edge-4"] == 0
    assert scores["cloud-1"] == 5


def test_placement_hint_explains_the_thermal_forecast(
    app_client: tuple[TestClient, Session],
) -> None:
    client, _ = app_client
    hot = client.get("/api/v1/hints/placement/edge-3", headers=client.reader).json()  # type: ignore[attr-defined]
    assert hot["score"] < 80 and hot["advice"] in ("avoid", "neutral")
    assert any(
        r.startswith("thermal: temperature_celsius{sensor=tj} forecast to reach trip_point_0")
        for r in hot["reasons"]
    )
    avoid = client.get("/api/v1/hints/placement", params={"advice": "avoid"}).json()
    assert [h["node"] for h in avoid] == ["edge-4"]


def test_capacity_scaling_and_metrics(app_client: tuple[TestClient, Session]) -> None:
    client, _ = app_client
    cap = client.get("/api/v1/hints/capacity").json()
    assert len(cap) == 1
    site = cap[0]
    assert (site["site_id"], site["nodes"], site["capacity_now"], site["capacity_forecast"]) == (
        "plant-a",
        4,
        3.0,
        2.0,
    )
    assert site["workloads"][0]["suggested_change"] == -4  # 6 replicas, 2 healthy nodes ahead
    scaled = client.post(
        "/api/v1/hints/scaling",
        json={"workloads": [{"name": "small", "replicas": 2, "per_replica_load": 0.5}]},
    ).json()
    assert scaled[0]["workloads"][0]["max_replicas_forecast"] == 4
    assert scaled[0]["workloads"][0]["suggested_change"] == 0
    text = client.get("/api/v1/hints/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    scores = {
        s.labels["node"]: s.value for s in families["fleetwatch_node_placement_score"].samples
    }
    assert scores["edge-1"] == 100 and scores["edge-4"] == 0 and scores["edge-3"] < 80
    headroom = families["fleetwatch_site_capacity_headroom_ratio"].samples[0]
    assert headroom.labels == {"site": "plant-a"} and headroom.value == pytest.approx((3 - 6) / 4)


def test_approve_pending_action_and_read_audit(app_client: tuple[TestClient, Session]) -> None:
    client, db = app_client
    policy = Policy(name="drain-hot", action="drain", when=PolicyCondition(forecast_within_s=3600))
    settings = ActionsSettings(
        policies=[policy], require_approval=["drain"], mode="act", budget={"max_unhealthy": "2"}
    )
    service.evaluate(db=db, settings=settings, now=utcnow(), actuators=[])
    db.commit()
    pending = client.get("/api/v1/actions", params={"state": "pending"}).json()
    assert pending["total"] == 1
    action = pending["items"][0]
    assert action["device_id"] == "edge-3" and action["kind"] == "drain"
    denied = client.post(f"/api/v1/actions/{action['id']}/approve", headers=client.reader)  # type: ignore[attr-defined]
    assert denied.status_code == 403
    ok = client.post(f"/api/v1/actions/{action['id']}/approve", json={"comment": "go"})
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    assert ok.json()["decided_by"] == "ops"
    again = client.post(f"/api/v1/actions/{action['id']}/approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    audit = client.get("/api/v1/actions/audit", params={"action_id": action["id"]}).json()
    assert [e["event"] for e in audit["items"]] == ["approved", "pending_approval"]
    assert audit["items"][0]["actor"] == "ops" and audit["items"][0]["reasons"] == ["go"]


def test_pauses_api(app_client: tuple[TestClient, Session]) -> None:
    client, _ = app_client
    expires = (utcnow() + timedelta(hours=2)).isoformat()
    made = client.post(
        "/api/v1/actions/pauses",
        json={
            "name": "fw-freeze",
            "site_id": "plant-a",
            "reason": "vendor rollout",
            "expires_at": expires,
        },
    )
    assert made.status_code == 201 and made.json()["created_by"] == "ops"
    assert client.post("/api/v1/actions/pauses", json={"name": "fw-freeze"}).status_code == 409
    listed = client.get("/api/v1/actions/pauses").json()
    assert [p["name"] for p in listed] == ["fw-freeze"]
    assert client.delete("/api/v1/actions/pauses/fw-freeze").status_code == 204
    assert client.get("/api/v1/actions/pauses").json() == []
    assert client.delete("/api/v1/actions/pauses/fw-freeze").status_code == 404
    events = [e["event"] for e in client.get("/api/v1/actions/audit").json()["items"]]
    assert events[:2] == ["unpaused", "paused"]


def test_policies_api_lists_sources(app_client: tuple[TestClient, Session]) -> None:
    client, _ = app_client
    built_in = client.get("/api/v1/actions/policies").json()
    assert {p["source"] for p in built_in} == {"built-in"}
    body: dict[str, Any] = {
        "name": "cordon-hot",
        "action": "cordon",
        "when": {"forecast_within_s": 600},
    }
    assert client.post("/api/v1/actions/policies", json=body).status_code == 201
    bad = client.post(
        "/api/v1/actions/policies", json={"name": "x", "action": "cordon", "when": {}}
    )
    assert bad.status_code == 422
    listed = client.get("/api/v1/actions/policies").json()
    assert [(p["name"], p["source"]) for p in listed] == [("cordon-hot", "api")]
    assert client.delete("/api/v1/actions/policies/cordon-hot").status_code == 204
