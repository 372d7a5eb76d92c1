"""The Greengrass actuator under botocore's Stubber (validated against the real service model),
and the agent-side deferral against a fake that follows the IPC client v2 interface."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fleetwatch.actions.config import GreengrassActuatorSettings
from fleetwatch.actions.greengrass import GreengrassActuator
from fleetwatch.actions.greengrass_ipc import UpdateDeferrer, connect
from fleetwatch.plugins.actuator import CancelRolloutRequest, HoldUpgradeRequest, ReleaseHoldRequest
from tests.fakes.greengrass_ipc import FakeGreengrassCoreIPCClientV2

FIXTURES = Path(__file__).parents[1] / "fixtures"
THING = "orin-plant-a-017"
DEP = "0f6b2a71-93c4-4d8e-b5a2-7e1c9d3f4a60"


def _effective(status: str) -> dict[str, Any]:
    raw = json.loads((FIXTURES / "greengrass_list_effective_deployments.json").read_text())
    raw.pop("ResponseMetadata", None)
    out = copy.deepcopy(raw)
    for item in out["effectiveDeployments"]:
        for key in ("creationTimestamp", "modifiedTimestamp"):
            item[key] = datetime.fromisoformat(item[key])
    out["effectiveDeployments"][0]["coreDeviceExecutionStatus"] = status
    return out


def _deployment(action: str) -> dict[str, Any]:
    return {
        "targetArn": "arn:aws:iot:eu-central-1:123456789012:thinggroup/fleetwatch-orin",
        "revisionId": "14",
        "deploymentId": DEP,
        "deploymentName": "fleetwatch-orin-rev14",
        "deploymentStatus": "ACTIVE",
        "deploymentPolicies": {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": action},
            "configurationValidationPolicy": {"timeoutInSeconds": 60},
        },
    }


@pytest.fixture
def gg() -> Any:
    client = boto3.client(
        "greengrassv2",
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _req(cls: type = HoldUpgradeRequest, **kw: Any) -> Any:
    return cls(idempotency_key="k", device_id=THING, site_id="plant-a", thing_name=THING, **kw)


def test_hold_reads_deployments_and_writes_nothing(gg: Any) -> None:
    client, stubber = gg
    stubber.add_response(
        "list_effective_deployments", _effective("IN_PROGRESS"), {"coreDeviceThingName": THING}
    )
    stubber.add_response("get_deployment", _deployment("NOTIFY_COMPONENTS"), {"deploymentId": DEP})
    actuator = GreengrassActuator(GreengrassActuatorSettings(), client=client)
    outcome = actuator.apply(_req())
    assert outcome.status == "done" and outcome.writes == 0
    assert outcome.data == {"deferred": [f"fleetwatch-orin-rev14 ({DEP})"], "cannot_hold": []}


def test_hold_reports_deployments_that_cannot_be_held(gg: Any) -> None:
    client, stubber = gg
    stubber.add_response(
        "list_effective_deployments", _effective("QUEUED"), {"coreDeviceThingName": THING}
    )
    stubber.add_response(
        "get_deployment", _deployment("SKIP_NOTIFY_COMPONENTS"), {"deploymentId": DEP}
    )
    actuator = GreengrassActuator(GreengrassActuatorSettings(), client=client)
    outcome = actuator.apply(_req())
    assert outcome.data["cannot_hold"] == [f"fleetwatch-orin-rev14 ({DEP})"]
    assert "SKIP_NOTIFY_COMPONENTS" in outcome.detail and "NOTIFY_COMPONENTS" in outcome.detail


def test_finished_deployments_need_no_hold_and_release_writes_nothing(gg: Any) -> None:
    client, stubber = gg
    stubber.add_response(
        "list_effective_deployments", _effective("SUCCEEDED"), {"coreDeviceThingName": THING}
    )
    actuator = GreengrassActuator(GreengrassActuatorSettings(), client=client)
    plan = actuator.plan(_req())
    assert plan.calls == () and plan.notes == ("no rollout in progress now",)
    assert actuator.apply(_req(ReleaseHoldRequest)).writes == 0


def test_cancel_rollout_calls_cancel_deployment(gg: Any) -> None:
    client, stubber = gg
    stubber.add_response(
        "cancel_deployment", {"message": "Deployment cancelled"}, {"deploymentId": DEP}
    )
    actuator = GreengrassActuator(GreengrassActuatorSettings(), client=client)
    outcome = actuator.apply(_req(CancelRolloutRequest, deployment_id=DEP))
    assert (outcome.status, outcome.writes, outcome.data) == ("done", 1, {"deployment": DEP})


def test_gate_always_asks_approval_for_cancel_rollout() -> None:
    from fleetwatch.actions import gate
    from fleetwatch.actions.config import ActionsSettings, Budget
    from fleetwatch.actions.policy import Proposal

    ctx = gate.GateContext(
        datetime.fromisoformat("2026-12-04T12:00:00+00:00"),
        ActionsSettings(),
        {"plant-a": gate.SiteGate("plant-a", 10, Budget())},
        {},
    )
    proposal = Proposal("p", "cancel_rollout", THING, "plant-a", ("failing rollout",))
    assert gate.decide(ctx, proposal).verdict == "approval"
    assert gate.decide(ctx, proposal, approved=True).verdict == "allow"


def test_agent_defers_updates_while_held_and_lets_them_through_after() -> None:
    ipc = FakeGreengrassCoreIPCClientV2()
    held = {"now": True}
    deferrer = UpdateDeferrer(ipc, lambda: held["now"], recheck_after_ms=60_000)
    deferrer.start()
    deferrer.start()  # idempotent
    assert ipc.subscriptions == 1
    ipc.emit_pre_update(DEP)
    ipc.emit_post_update("other")  # not a question: no answer
    held["now"] = False
    ipc.emit_pre_update(DEP)
    calls = [(c.deployment_id, c.recheck_after_ms) for c in ipc.deferrals]
    assert calls == [(DEP, 60_000), (DEP, 0)]
    assert "holds upgrades" in (ipc.deferrals[0].message or "")
    deferrer.stop()
    assert ipc.operation.closed


def test_agent_defers_when_the_hold_state_is_unknown() -> None:
    ipc = FakeGreengrassCoreIPCClientV2()

    def unreachable() -> bool:
        raise ConnectionError("fleetwatch API unreachable")

    UpdateDeferrer(ipc, unreachable, recheck_after_ms=1000).start()
    ipc.emit_pre_update(DEP)
    assert ipc.deferrals[0].recheck_after_ms == 1000


def test_without_the_sdk_connect_reports_cannot_hold() -> None:
    client, reason = connect()
    assert client is None and reason.startswith("cannot hold:")


def test_cannot_hold_reaches_the_audit_log(gg: Any, db: Any) -> None:
    from sqlalchemy import select

    from fleetwatch.actions import records, service
    from fleetwatch.actions.config import ActionsSettings, Policy, PolicyCondition
    from fleetwatch.actions.models import AuditEntry
    from tests.actions.conftest import T0, add_device

    client, stubber = gg
    stubber.add_response(
        "list_effective_deployments", _effective("IN_PROGRESS"), {"coreDeviceThingName": THING}
    )
    stubber.add_response(
        "get_deployment", _deployment("SKIP_NOTIFY_COMPONENTS"), {"deploymentId": DEP}
    )
    add_device(db, THING, runtime="greengrass-2.14", node_name=None, status="warning")
    for i in range(3):
        add_device(db, f"gg-{i}", runtime="greengrass-2.14", node_name=None)
    db.commit()
    hold = Policy(name="hold", action="hold_upgrade", when=PolicyCondition(status_in=["warning"]))
    actuator = GreengrassActuator(GreengrassActuatorSettings(), client=client)
    summary = service.evaluate(
        db=db, settings=ActionsSettings(mode="act", policies=[hold]), now=T0, actuators=[actuator]
    )
    db.commit()
    assert summary.applied == 1
    applied = db.scalars(select(AuditEntry).where(AuditEntry.event == "applied")).one()
    assert applied.device_id == THING
    assert "cannot hold fleetwatch-orin-rev14" in applied.reasons[0]
    assert [s.device_id for s in records.device_states(db=db, held=True)] == [THING]
