"""Celery tasks of actions, in eager mode: a redelivered task acts once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleetwatch.actions import records, tasks
from fleetwatch.actions.models import Action
from fleetwatch.db import load_models, make_engine, session_factory, session_scope
from fleetwatch.settings import Settings, load_settings
from fleetwatch.worker import beat_schedule, celery_app, configure, route_for
from tests.actions.conftest import T0, add_device, later, seed_nodes
from tests.fakes.kubernetes_api import FakeKubernetesApi

KEYS = ("task_always_eager", "task_eager_propagates", "fleetwatch_settings", "beat_schedule")


@pytest.fixture
def eager(
    sqlite_db_url: str, k8s: FakeKubernetesApi, tmp_path: Path
) -> Iterator[tuple[Settings, Any]]:
    settings = load_settings(
        data_dir=tmp_path,
        db={"url": sqlite_db_url},
        celery={"embedded": True},
        actions={
            "mode": "act",
            "actuators": ["kubernetes"],
            "kubernetes": {"host": k8s.url},
            "require_approval": ["drain"],
            "policies": [
                {"name": "cordon-hot", "action": "cordon", "when": {"forecast_within_s": 7200}},
                {"name": "drain-risky", "action": "drain", "when": {"risk_1h_gte": 0.8}},
            ],
        },
    )
    saved = {k: celery_app.conf.get(k) for k in KEYS}
    configure(settings)
    load_models()
    engine = make_engine(sqlite_db_url)
    factory = session_factory(engine)
    seed_nodes(k8s, ["n1", "n2", "n3", "n4", "n5", "n6", "n7"])
    with session_scope(factory) as db:
        for name in ["n1", "n2", "n3", "n4", "n5"]:
            add_device(db, name, "plant-b", forecast_s=1800 if name == "n2" else None)
        add_device(db, "n6", "plant-c", risk_1h=0.95)
        add_device(db, "n7", "plant-c")
    yield settings, factory
    engine.dispose()
    celery_app.conf.update(saved)


def test_redelivered_evaluate_writes_once(
    eager: tuple[Settings, Any], k8s: FakeKubernetesApi
) -> None:
    first = tasks.evaluate.delay(now=T0.isoformat()).get()
    writes = [(w.method, w.path) for w in k8s.writes()]
    assert writes == [("PATCH", "/api/v1/nodes/n2")]
    assert first["applied"] == 1 and first["pending"] == 1
    second = tasks.evaluate.delay(now=T0.isoformat()).get()
    assert [(w.method, w.path) for w in k8s.writes()] == writes
    # n2 is cordoned now (nothing to propose); the pending drain of n6 is the same decision.
    assert second["applied"] == 0 and second["pending"] == 0 and second["duplicates"] == 1


def test_redelivered_apply_action_writes_once(
    eager: tuple[Settings, Any], k8s: FakeKubernetesApi
) -> None:
    _, factory = eager
    tasks.evaluate.delay(now=T0.isoformat()).get()
    k8s.clear_requests()
    with session_scope(factory) as db:
        pending = db.scalars(select(Action).where(Action.state == "pending")).one()
        records.decide_approval(
            db=db, action_id=pending.id, approve=True, actor="ops", now=later(10)
        )
        action_id = pending.id
    first = tasks.apply_action.delay(action_id, now=later(20).isoformat()).get()
    writes = [(w.method, w.path) for w in k8s.writes()]
    assert first["state"] == "applied"
    assert writes[0] == ("PATCH", "/api/v1/nodes/n6")
    assert ("POST", "/api/v1/namespaces/default/pods/n6-app-0/eviction") in writes
    second = tasks.apply_action.delay(action_id, now=later(20).isoformat()).get()
    assert second["state"] == "applied"
    assert [(w.method, w.path) for w in k8s.writes()] == writes


def test_tasks_are_routed_and_scheduled(eager: tuple[Settings, Any]) -> None:
    settings, _ = eager
    for name in ("fleetwatch.actions.evaluate", "fleetwatch.actions.apply_action"):
        assert name in celery_app.tasks
        assert route_for(name) == "actions"
    entry = beat_schedule(settings)["actions-evaluate"]
    assert entry["task"] == "fleetwatch.actions.evaluate"
    assert entry["schedule"] == settings.actions.evaluate_interval_s
