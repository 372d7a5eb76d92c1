"""Greengrass actuator: upgrade holds on core devices, and cancelling a rollout with approval.

Greengrass has no cloud-side "hold this device" call. A hold works on the device: the gateway
agent running there as a component subscribes to component updates over IPC and defers each one
(``DeferComponentUpdate``) while fleetwatch holds the device (see ``greengrass_ipc``).
That only works for deployments whose ``componentUpdatePolicy.action`` is ``NOTIFY_COMPONENTS``
(the default); a deployment with ``SKIP_NOTIFY_COMPONENTS`` cannot be held and the outcome says so,
naming the deployment, so the audit log shows the hold is not effective there (the fallback:
redeploy with ``NOTIFY_COMPONENTS``, or cancel the rollout with approval).

This actuator reads the device's effective deployments and their policies
(``ListEffectiveDeployments``, ``GetDeployment``) and writes only ``CancelDeployment``, which the
gate lets through only with a person's approval (it cancels the rollout for its whole target).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fleetwatch.actions.config import GreengrassActuatorSettings
from fleetwatch.plugins.actuator import (
    ActionRequest,
    Actuator,
    ActuatorCapabilities,
    CancelRolloutRequest,
    Outcome,
    Plan,
    PlannedCall,
)

ACTIVE_EXECUTION = frozenset({"QUEUED", "IN_PROGRESS"})


def make_client(config: GreengrassActuatorSettings) -> Any:
    import boto3

    return boto3.client("greengrassv2", region_name=config.region, endpoint_url=config.endpoint_url)


class GreengrassActuator(Actuator):
    """Hold/release upgrades on Greengrass core devices; cancel a rollout (approval only)."""

    name: ClassVar[str] = "greengrass"
    config_model = GreengrassActuatorSettings
    capabilities = ActuatorCapabilities(
        kinds=frozenset({"hold_upgrade", "release_hold", "cancel_rollout"}),
        description="AWS IoT Greengrass v2 core devices (deferral through the gateway agent)",
    )

    def __init__(self, config: GreengrassActuatorSettings, *, client: Any | None = None) -> None:
        super().__init__(config)
        self.client = client if client is not None else make_client(config)

    def handles(self, request: ActionRequest) -> bool:
        return request.thing_name is not None and request.kind in self.capabilities.kinds

    def deployments(self, thing_name: str) -> list[dict[str, Any]]:
        """The device's deployments still rolling out, each with its deployment policies."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"coreDeviceThingName": thing_name}
            if token:
                kwargs["nextToken"] = token
            page = self.client.list_effective_deployments(**kwargs)
            for item in page.get("effectiveDeployments", []):
                if item.get("coreDeviceExecutionStatus") in ACTIVE_EXECUTION:
                    detail = self.client.get_deployment(deploymentId=item["deploymentId"])
                    found.append({**item, "deploymentPolicies": detail.get("deploymentPolicies")})
            token = page.get("nextToken")
            if not token:
                return found

    @staticmethod
    def _holdable(deployment: dict[str, Any]) -> bool:
        policy = (deployment.get("deploymentPolicies") or {}).get("componentUpdatePolicy") or {}
        return bool(policy.get("action", "NOTIFY_COMPONENTS") == "NOTIFY_COMPONENTS")

    def _hold_notes(self, thing: str) -> tuple[list[str], list[str]]:
        holdable: list[str] = []
        not_holdable: list[str] = []
        for dep in self.deployments(thing):
            label = f"{dep.get('deploymentName') or dep['deploymentId']} ({dep['deploymentId']})"
            (holdable if self._holdable(dep) else not_holdable).append(label)
        return holdable, not_holdable

    def _cancel_target(self, request: ActionRequest) -> str | None:
        if isinstance(request, CancelRolloutRequest) and request.deployment_id:
            return request.deployment_id
        active = self.deployments(request.thing_name or "")
        return active[0]["deploymentId"] if active else None

    def plan(self, request: ActionRequest) -> Plan:
        thing = request.thing_name
        if thing is None:
            return Plan(request, feasible=False, notes=("not a Greengrass core device",))
        if request.kind == "cancel_rollout":
            target = self._cancel_target(request)
            if target is None:
                return Plan(request, feasible=False, notes=("no rollout in progress",))
            call = PlannedCall("POST", f"/greengrass/v2/deployments/{target}/cancel")
            return Plan(request, (call,), True, ("cancels the rollout for its whole target",))
        if request.kind == "hold_upgrade":
            holdable, not_holdable = self._hold_notes(thing)
            notes = [f"the gateway agent defers {d}" for d in holdable]
            notes += [
                f"cannot hold {d}: componentUpdatePolicy SKIP_NOTIFY_COMPONENTS"
                for d in not_holdable
            ]
            return Plan(request, (), True, tuple(notes) or ("no rollout in progress now",))
        return Plan(request, (), True, ("the gateway agent stops deferring",))

    def apply(self, request: ActionRequest) -> Outcome:
        thing = request.thing_name
        if thing is None or request.kind not in self.capabilities.kinds:
            return Outcome("unsupported", f"{request.kind} needs a Greengrass core device")
        if request.kind == "cancel_rollout":
            target = self._cancel_target(request)
            if target is None:
                return Outcome("done", "no rollout in progress: nothing to cancel")
            self.client.cancel_deployment(deploymentId=target)
            return Outcome("done", f"deployment {target} cancelled", 1, data={"deployment": target})
        if request.kind == "release_hold":
            return Outcome("done", "hold lifted; the gateway agent lets deferred updates proceed")
        holdable, not_holdable = self._hold_notes(thing)
        data = {"deferred": holdable, "cannot_hold": not_holdable}
        if not_holdable:
            return Outcome(
                "done",
                "cannot hold "
                + ", ".join(not_holdable)
                + ": componentUpdatePolicy is SKIP_NOTIFY_COMPONENTS (redeploy with "
                "NOTIFY_COMPONENTS, or cancel the rollout with approval)",
                data=data,
            )
        return Outcome("done", f"held: the gateway agent defers updates on {thing}", data=data)
