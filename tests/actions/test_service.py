"""Policies → gate → actions against the state DB and the recording fake Kubernetes API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetwatch.actions import records, service
from fleetwatch.actions.config import ActionsSettings, Policy, PolicyCondition
from fleetwatch.actions.kubernetes import HOLD_ANNOTATION, KubernetesActuator
from fleetwatch.actions.models import Action, AuditEntry, DeviceActionState
from tests.actions.conftest import T0, add_device, later, seed_nodes, set_health
from tests.fakes.kubernetes_api import FakeKubernetesApi, pdb

DRAIN = Policy(name="drain-risky", action="drain", when=PolicyCondition(risk_1h_gte=0.8))
HOLD = Policy(
    name="hold-unhealthy", action="hold_upgrade", when=PolicyCondition(status_in=["warning"])
)
UNCORDON = Policy(name="uncordon", action="uncordon", when=PolicyCondition(recovered=True))


def _settings(**kw: Any) -> ActionsSettings:
    kw.setdefault("policies", [DRAIN])
    return ActionsSettings(**kw)


def _fleet(
    db: Session, k8s: FakeKubernetesApi, total: int, risky: int, site: str = "plant-a"
) -> list[str]:
    names = [f"{site}-n{i:02d}" for i in range(total)]
    seed_nodes(k8s, names)
    for i, name in enumerate(names):
        add_device(db, name, site, risk_1h=0.9 if i < risky else 0.05)
    db.commit()
    return names


def _nodes_written(k8s: FakeKubernetesApi) -> set[str]:
    touched = set()
    for w in k8s.writes():
        if w.path.startswith("/api/v1/nodes/"):
            touched.add(w.path.rsplit("/", 1)[1])
        else:
            pod_name = w.path.split("/")[6]
            touched.add(pod_name.rsplit("-app-", 1)[0])
    return touched


def test_dry_run_plans_and_never_writes(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    _fleet(db, k8s, total=5, risky=1)
    summary = service.evaluate(db=db, settings=_settings(), now=T0, actuators=[kube])
    db.commit()
    assert k8s.writes() == []
    assert summary.planned == 1 and summary.applied == 0
    action = db.scalars(select(Action)).one()
    assert (action.state, action.mode, action.kind, action.device_id) == (
        "planned",
        "dry-run",
        "drain",
        "plant-a-n00",
    )
    assert action.reasons == ["risk_1h 0.90 >= 0.80"]
    targets = [c["target"] for c in action.plan["calls"]]
    assert targets[0] == "/api/v1/nodes/plant-a-n00"
    assert "/api/v1/namespaces/default/pods/plant-a-n00-app-0/eviction" in targets
    assert not any("plant-a-n00-ds" in t for t in targets)  # the DaemonSet pod stays
    # The next pass in the same window decides nothing new and still writes nothing.
    again = service.evaluate(db=db, settings=_settings(), now=later(60), actuators=[kube])
    assert again.planned == 0 and k8s.writes() == []


def test_budget_of_one_drains_exactly_one_of_ten_flagged(
    any_db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    db = any_db
    _fleet(db, k8s, total=30, risky=10)
    settings = _settings(mode="act", budget={"max_unhealthy": "1"})
    summary = service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    assert summary.applied == 1 and summary.refused == 9
    assert len(_nodes_written(k8s)) == 1
    drained = _nodes_written(k8s).pop()
    assert k8s.state.nodes[drained]["spec"]["unschedulable"] is True
    cordoned = [n for n, obj in k8s.state.nodes.items() if obj["spec"].get("unschedulable")]
    assert cordoned == [drained]
    refusals = db.scalars(select(AuditEntry).where(AuditEntry.event == "refused")).all()
    assert len(refusals) == 9
    assert all(
        any(r.startswith("budget: site plant-a allows 1") for r in e.reasons) for e in refusals
    )
    assert all(drained in " ".join(e.reasons) for e in refusals)  # names who holds the budget
    # A redelivered pass: no new writes, no duplicate audit of the same refusals.
    writes = len(k8s.writes())
    again = service.evaluate(db=db, settings=settings, now=later(30), actuators=[kube])
    db.commit()
    assert len(k8s.writes()) == writes
    assert again.applied == 0 and again.refused == 0
    assert len(db.scalars(select(AuditEntry).where(AuditEntry.event == "refused")).all()) == 9


def test_storm_stops_every_automatic_action_and_pages(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator, announced: list[dict[str, Any]]
) -> None:
    _fleet(db, k8s, total=10, risky=6)
    settings = _settings(mode="act", budget={"max_unhealthy": "50%"}, storm_ratio=0.5)
    summary = service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    assert summary.storms == ["plant-a"]
    assert k8s.writes() == []
    assert summary.refused == 6 and summary.applied == 0
    pages = [a for a in announced if a["labels"].get("alertname") == "FleetwatchActionStorm"]
    assert len(pages) == 1 and pages[0]["severity"] == "critical"
    assert "6 of 10 devices flagged" in pages[0]["description"]
    storm = db.scalars(select(AuditEntry).where(AuditEntry.event == "storm")).one()
    assert storm.site_id == "plant-a"
    refused = db.scalars(select(AuditEntry).where(AuditEntry.event == "refused")).all()
    assert all(any("storm brake" in r for r in e.reasons) for e in refused)
    # Still storming next pass: no second page, still no writes.
    service.evaluate(db=db, settings=settings, now=later(60), actuators=[kube])
    assert len([a for a in announced if a["severity"] == "critical"]) == 1
    assert k8s.writes() == []


def test_hold_is_released_at_its_maximum(
    any_db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    db = any_db
    _fleet(db, k8s, total=4, risky=0)
    set_health(db, "plant-a-n01", risk_1h=0.2, status="warning")
    db.commit()
    settings = _settings(mode="act", policies=[HOLD], max_hold_s=3600)
    service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    pods = [p for p in k8s.state.pods.values() if p["spec"]["nodeName"] == "plant-a-n01"]
    assert all(p["metadata"]["annotations"].get(HOLD_ANNOTATION) == "true" for p in pods)
    state = db.get(DeviceActionState, "plant-a-n01")
    assert state is not None and state.held and state.hold_expires_at == later(3600)
    k8s.clear_requests()
    service.evaluate(db=db, settings=settings, now=later(3599), actuators=[kube])
    assert k8s.writes() == []  # still within the maximum
    summary = service.evaluate(db=db, settings=settings, now=later(3600), actuators=[kube])
    db.commit()
    assert summary.applied == 1
    assert not any(HOLD_ANNOTATION in p["metadata"]["annotations"] for p in k8s.state.pods.values())
    release = db.scalars(select(Action).where(Action.kind == "release_hold")).one()
    assert release.policy == service.EXPIRY_POLICY and release.state == "applied"
    assert db.get(DeviceActionState, "plant-a-n01").release_requested_at == later(3600)
    # Still unhealthy, but a hold that ran out is not placed again until the device recovers.
    k8s.clear_requests()
    service.evaluate(db=db, settings=settings, now=later(7300), actuators=[kube])
    assert k8s.writes() == []


def test_approval_required_kinds_wait_for_a_person(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator, announced: list[dict[str, Any]]
) -> None:
    _fleet(db, k8s, total=5, risky=1)
    settings = _settings(mode="act", require_approval=["drain"])
    first = service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    assert first.pending == 1 and k8s.writes() == []
    action = db.scalars(select(Action)).one()
    assert action.state == "pending"
    assert any(a["labels"]["alertname"] == "FleetwatchActionApproval" for a in announced)
    records.decide_approval(
        db=db, action_id=action.id, approve=True, actor="ops-anna", now=later(30)
    )
    db.commit()
    service.evaluate(db=db, settings=settings, now=later(60), actuators=[kube])
    db.commit()
    db.refresh(action)
    assert action.state == "applied" and action.decided_by == "ops-anna"
    assert _nodes_written(k8s) == {"plant-a-n00"}
    events = [e.event for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert events == ["pending_approval", "approved", "applied"]


def test_pause_refuses_with_its_name_and_lifting_it_lets_actions_through(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    _fleet(db, k8s, total=5, risky=1)
    records.create_pause(
        db=db, name="change-freeze", site_id=None, reason="fw rollout", actor="ops", now=T0
    )
    db.commit()
    settings = _settings(mode="act")
    service.evaluate(db=db, settings=settings, now=later(1), actuators=[kube])
    db.commit()
    assert k8s.writes() == []
    refused = db.scalars(select(AuditEntry).where(AuditEntry.event == "refused")).one()
    assert "paused by 'change-freeze' (global)" in refused.reasons
    records.delete_pause(db=db, name="change-freeze", actor="ops", now=later(2))
    db.commit()
    summary = service.evaluate(db=db, settings=settings, now=later(3), actuators=[kube])
    assert summary.applied == 1 and _nodes_written(k8s) == {"plant-a-n00"}


def test_blocked_drain_is_escalated_not_forced(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator, announced: list[dict[str, Any]]
) -> None:
    _fleet(db, k8s, total=5, risky=1)
    k8s.state.pdbs.append(
        pdb("app-pdb", namespace="default", match_labels={"app": "app-plant-a-n00"}, allowed=0)
    )
    settings = _settings(mode="act", drain_timeout_s=600)
    first = service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    assert first.in_progress == 1
    action = db.scalars(select(Action)).one()
    assert action.state == "in_progress"
    state = db.get(DeviceActionState, "plant-a-n00")
    assert state is not None and state.draining and state.cordoned
    service.evaluate(db=db, settings=settings, now=later(300), actuators=[kube])
    assert not any(a["labels"]["alertname"] == "FleetwatchDrainBlocked" for a in announced)
    summary = service.evaluate(db=db, settings=settings, now=later(601), actuators=[kube])
    db.commit()
    assert summary.escalated == 1
    page = next(a for a in announced if a["labels"]["alertname"] == "FleetwatchDrainBlocked")
    assert (
        "default/plant-a-n00-app-0" in page["description"] and "not forced" in page["description"]
    )
    assert ("default", "plant-a-n00-app-0") in k8s.state.pods
    assert not any(w.method == "DELETE" for w in k8s.writes())
    # Once the budget allows it, the next pass finishes the drain.
    k8s.state.pdbs[0]["status"]["disruptionsAllowed"] = 2
    service.evaluate(db=db, settings=settings, now=later(700), actuators=[kube])
    db.commit()
    db.refresh(action)
    assert action.state == "applied"
    assert db.get(DeviceActionState, "plant-a-n00").draining is False


def test_uncordon_waits_for_the_healthy_delay(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    _fleet(db, k8s, total=5, risky=1)
    settings = _settings(mode="act", policies=[DRAIN, UNCORDON], healthy_delay_s=900)
    service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    assert k8s.state.nodes["plant-a-n00"]["spec"]["unschedulable"] is True
    set_health(db, "plant-a-n00", risk_1h=0.01, status="ok")
    db.commit()
    service.evaluate(db=db, settings=settings, now=later(3700), actuators=[kube])
    db.commit()
    refused = db.scalars(
        select(AuditEntry).where(AuditEntry.event == "refused", AuditEntry.kind == "uncordon")
    ).one()
    assert any(r.startswith("healthy delay: healthy for 0 s") for r in refused.reasons)
    assert k8s.state.nodes["plant-a-n00"]["spec"]["unschedulable"] is True
    service.evaluate(db=db, settings=settings, now=later(3700 + 900), actuators=[kube])
    db.commit()
    assert k8s.state.nodes["plant-a-n00"]["spec"]["unschedulable"] is False
    assert db.get(DeviceActionState, "plant-a-n00").cordoned is False


def test_storm_page_lands_in_alerting(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    from fleetwatch.alerting import service as alerting

    _fleet(db, k8s, total=10, risky=6)
    settings = _settings(mode="act", storm_ratio=0.5)
    service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    db.commit()
    firing = alerting.list_alerts(db=db, state="firing")
    storm = [a for a in firing if a.labels.get("alertname") == "FleetwatchActionStorm"]
    assert len(storm) == 1
    assert storm[0].severity == "critical" and storm[0].site == "plant-a"
    assert storm[0].labels["source"] == "fleetwatch-actions"


def test_idempotency_key_is_unique_in_the_schema(any_db: Session) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    add_device(any_db, "d1")
    any_db.commit()
    for _ in range(2):
        any_db.add(
            Action(
                idempotency_key="k" * 64,
                policy="p",
                kind="cordon",
                device_id="d1",
                site_id="plant-a",
                state="planned",
                mode="dry-run",
                created_at=T0,
                updated_at=T0,
            )
        )
        if _ == 0:
            any_db.commit()
    with pytest.raises(IntegrityError):
        any_db.commit()
    any_db.rollback()


def test_release_request_reaches_the_gateway_agent(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    _fleet(db, k8s, total=4, risky=0)
    set_health(db, "plant-a-n02", risk_1h=0.2, status="warning")
    db.commit()
    settings = _settings(
        mode="act",
        policies=[HOLD, Policy(name="release", action="release_hold", when={"recovered": True})],
        healthy_delay_s=600,
    )
    service.evaluate(db=db, settings=settings, now=T0, actuators=[kube])
    assert [s.device_id for s in records.device_states(db=db, held=True)] == ["plant-a-n02"]
    assert records.release_requests(db=db) == []
    set_health(db, "plant-a-n02", risk_1h=0.01, status="ok")
    service.evaluate(db=db, settings=settings, now=later(60), actuators=[kube])  # healthy since
    service.evaluate(db=db, settings=settings, now=later(700), actuators=[kube])
    db.commit()
    assert records.device_states(db=db, held=True) == []
    (request,) = records.release_requests(db=db, device_id="plant-a-n02")
    assert request.release_requested_at == later(700)
    records.ack_release(db=db, device_id="plant-a-n02", now=later(710), actor="agent")
    assert records.release_requests(db=db) == []


def test_actions_work_without_alerting(
    db: Session, k8s: FakeKubernetesApi, kube: KubernetesActuator, monkeypatch: Any
) -> None:
    from fleetwatch.actions import alerting_adapter

    monkeypatch.setattr(alerting_adapter, "_service", lambda: None)
    assert alerting_adapter.firing_alerts(db=db) == {}
    _fleet(db, k8s, total=10, risky=6)
    summary = service.evaluate(
        db=db, settings=_settings(mode="act", storm_ratio=0.5), now=T0, actuators=[kube]
    )
    db.commit()
    assert summary.storms == ["plant-a"] and k8s.writes() == []
    assert db.scalars(select(AuditEntry).where(AuditEntry.event == "storm")).one()
