"""The alerting REST endpoints, with real tokens, over the app the API serves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from fleetwatch.alerting import service
from fleetwatch.api import service as api_service
from fleetwatch.api.app import create_app
from fleetwatch.db import utcnow

from .conftest import make_settings, seed_fleet

SIGNING_KEY = "SUPERSECRETSIGNINGKEY"
URL_TOKEN = "URLTOKENSECRET"


@pytest.fixture
def api(sqlite_db, metrics, receiver, tmp_path):
    config = {
        "rules": [
            {
                "name": "DeviceSilent",
                "kind": "absence",
                "silent_for": "5m",
                "summary": "{device} silent",
            }
        ],
        "route": {"receiver": "hook", "group_wait": "0s"},
        "receivers": [
            {
                "name": "hook",
                "notifier": "webhook",
                "config": {"url": f"{receiver.url}/{URL_TOKEN}", "secret": SIGNING_KEY},
            }
        ],
    }
    settings = make_settings(tmp_path, config)
    now = utcnow()
    with sqlite_db.session() as db:
        seed_fleet(db, {"s1": 2, "s2": 1}, last_seen=now - timedelta(minutes=10))
        service.evaluate(db=db, store=metrics, now=now, settings=settings)
        tokens = {}
        for name, scopes, site in (
            ("reader", ["read"], None),
            ("operator", ["read", "alerts"], None),
            ("s2-reader", ["read"], "s2"),
        ):
            _row, clear = api_service.create_token(db=db, name=name, scopes=scopes, site=site)
            tokens[name] = {"Authorization": f"Bearer {clear}"}
        db.commit()
    app = create_app(settings, store=metrics, session_factory=sqlite_db.factory)
    with TestClient(app) as client:
        yield client, tokens


def test_list_filter_and_get_alerts(api):
    client, tokens = api
    r = client.get("/api/v1/alerts", params={"state": "firing"}, headers=tokens["reader"])
    assert r.status_code == 200
    assert sorted(a["device"] for a in r.json()) == ["s1-dev00000", "s1-dev00001", "s2-dev00000"]
    one = client.get(
        "/api/v1/alerts", params={"device": "s1-dev00001"}, headers=tokens["reader"]
    ).json()
    assert len(one) == 1 and one[0]["annotations"]["summary"] == "s1-dev00001 silent"
    fp = one[0]["fingerprint"]
    assert client.get(f"/api/v1/alerts/{fp}", headers=tokens["reader"]).json()["state"] == "firing"
    assert (
        client.get("/api/v1/alerts/0123456789abcdef", headers=tokens["reader"]).status_code == 404
    )
    assert client.get("/api/v1/alerts").status_code == 401


def test_site_bound_token_sees_its_site_only(api):
    client, tokens = api
    seen = client.get("/api/v1/alerts", headers=tokens["s2-reader"]).json()
    assert [a["site"] for a in seen] == ["s2"]
    other = client.get("/api/v1/alerts", params={"site": "s1"}, headers=tokens["reader"]).json()[0]
    assert (
        client.get(
            f"/api/v1/alerts/{other['fingerprint']}", headers=tokens["s2-reader"]
        ).status_code
        == 404
    )


def test_acknowledge_needs_alerts_scope_and_expires(api):
    client, tokens = api
    fp = client.get("/api/v1/alerts", headers=tokens["reader"]).json()[0]["fingerprint"]
    body = {"expires_in_s": 600, "comment": "on it"}
    assert (
        client.post(f"/api/v1/alerts/{fp}/ack", json=body, headers=tokens["reader"]).status_code
        == 403
    )
    r = client.post(f"/api/v1/alerts/{fp}/ack", json=body, headers=tokens["operator"])
    assert r.status_code == 200
    acked = r.json()
    assert acked["acknowledged"] is True and acked["acknowledged_by"] == "operator"
    assert acked["ack_comment"] == "on it" and acked["ack_expires_at"] > acked["acknowledged_at"]
    resolved = client.post(f"/api/v1/alerts/{fp}/resolve", headers=tokens["operator"]).json()
    assert resolved["state"] == "resolved" and resolved["resolved_by"] == "operator"
    again = client.post(f"/api/v1/alerts/{fp}/ack", json=body, headers=tokens["operator"])
    assert again.status_code == 409 and "resolved" in again.json()["error"]["message"]


def test_silences_prefilled_from_an_alert_and_expired(api):
    client, tokens = api
    alert = client.get(
        "/api/v1/alerts", params={"device": "s1-dev00000"}, headers=tokens["reader"]
    ).json()[0]
    fp = alert["fingerprint"]
    matchers = client.get(f"/api/v1/alerts/{fp}/silence-matchers", headers=tokens["reader"]).json()
    assert {"name": "device", "op": "=", "value": "s1-dev00000"} in matchers
    assert all(m["name"] != "severity" for m in matchers)
    r = client.post(
        f"/api/v1/alerts/{fp}/silence",
        json={"duration_s": 3600, "comment": "replacing fan"},
        headers=tokens["operator"],
    )
    assert r.status_code == 201
    silence = r.json()
    assert silence["created_by"] == "operator" and silence["state"] == "active"
    assert silence["matchers"] == matchers
    listed = client.get("/api/v1/silences", headers=tokens["reader"]).json()
    assert [s["id"] for s in listed] == [silence["id"]]
    expired = client.delete(f"/api/v1/silences/{silence['id']}", headers=tokens["operator"]).json()
    assert expired["state"] == "expired"
    assert client.get("/api/v1/silences", headers=tokens["reader"]).json() == []
    bad = client.post("/api/v1/silences", json={"duration_s": 60}, headers=tokens["operator"])
    assert bad.status_code == 422  # matchers are required
    regex = {"matchers": [{"name": "site", "op": "=~", "value": "(unclosed"}]}
    refused = client.post("/api/v1/silences", json=regex, headers=tokens["operator"])
    assert refused.status_code == 409 and "bad regex" in refused.json()["error"]["message"]
    backwards = {
        "matchers": [{"name": "site", "value": "s1"}],
        "starts_at": "2030-01-02T00:00:00Z",
        "ends_at": "2030-01-01T00:00:00Z",
    }
    assert (
        client.post("/api/v1/silences", json=backwards, headers=tokens["operator"]).status_code
        == 409
    )
    ok = client.post(
        "/api/v1/silences",
        json={"matchers": [{"name": "site", "value": "s1"}]},
        headers=tokens["operator"],
    )
    assert ok.status_code == 201  # two hours by default
    assert ok.json()["ends_at"] > ok.json()["starts_at"]


def test_notifier_test_groups_and_delivery_log_without_secrets(api, receiver):
    client, tokens = api
    r = client.post("/api/v1/notifiers/test", json={"receiver": "hook"}, headers=tokens["operator"])
    assert r.status_code == 200
    note = r.json()
    assert note["delivery_state"] == "sent" and note["reason"] == "test"
    assert note["deliveries"][0]["status_code"] == 200
    assert note["deliveries"][0]["destination"] == receiver.url
    assert receiver.received[-1].path == f"/{URL_TOKEN}"
    log = client.get("/api/v1/notifications", headers=tokens["reader"])
    for text in (r.text, log.text):
        assert SIGNING_KEY not in text and URL_TOKEN not in text
    assert log.json()[0]["deliveries"][0]["latency_ms"] >= 0
    missing = client.post(
        "/api/v1/notifiers/test", json={"receiver": "nope"}, headers=tokens["operator"]
    )
    assert missing.status_code == 404
    assert client.get("/api/v1/alert-groups", headers=tokens["reader"]).json() == []
