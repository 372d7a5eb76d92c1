"""Greengrass v2 telemetry: fleet status service messages and nucleus-emitter arrays.

Field order and keys follow the nucleus' model classes and the fixtures
``greengrass_fleet_status.json`` and ``greengrass_nucleus_emitter.json`` (FORMATS.md §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fleetwatch.plugins.catalogue import COMPONENT_STATES
from fleetwatch.simulate import runtime as rtm

if TYPE_CHECKING:
    from fleetwatch.simulate.engine import Simulator

REGION_ACCOUNT = "eu-central-1:123456789012"
COMPLETE_TRIGGERS = ("NUCLEUS_LAUNCH", "NETWORK_RECONFIGURE", "CADENCE")
EMITTER_STATES = (
    "Starting",
    "Installed",
    "Stateless",
    "Stopping",
    "Broken",
    "Running",
    "Errored",
    "New",
    "Finished",
)


def _arn(group: str) -> str:
    return f"arn:aws:greengrass:{REGION_ACCOUNT}:configuration:thinggroup/{group}:14"


def fleet_status_topic(thing: str) -> str:
    return f"$aws/things/{thing}/greengrassv2/health/json"


def _status_details(sim: Simulator, i: int, c: int) -> dict[str, Any] | None:
    state = COMPONENT_STATES[sim.runtime.comp_state[i, c]]
    if state not in ("ERRORED", "BROKEN"):
        return None
    code = 1 if sim.runtime.comp_version[i] != rtm.GG_COMPONENTS[0][1] else 137
    return {
        "statusCodes": ["RUN_ERROR"],
        "statusReason": "An error occurred while running the component. "
        f"The run script exited with code {code}.",
    }


def _component(sim: Simulator, i: int, c: int, group: str) -> dict[str, Any]:
    name, version, is_root, _ = rtm.GG_COMPONENTS[c]
    if c == 0:
        version = sim.runtime.comp_version[i]
    return {
        "componentName": name,
        "version": version,
        "fleetConfigArns": [
            f"arn:aws:greengrass:{REGION_ACCOUNT}:configuration:thinggroup/{group}:14"
        ],
        "componentStatusDetails": _status_details(sim, i, c),
        "isRoot": is_root,
        "status": COMPONENT_STATES[sim.runtime.comp_state[i, c]],
    }


def fleet_status(
    sim: Simulator, i: int, trigger: str = "CADENCE", components: Iterable[int] | None = None
) -> dict[str, Any]:
    """One fleet-status message for device index ``i``; bumps its sequence number.

    COMPLETE triggers list every component; others (e.g. ``COMPONENT_STATUS_CHANGE``) list only
    ``components`` (indices into ``GG_COMPONENTS``).
    """
    rt, dev = sim.runtime, sim.devices[i]
    complete = trigger in COMPLETE_TRIGGERS
    which = range(len(rtm.GG_COMPONENTS)) if complete or components is None else components
    rt.sequence[i] += 1
    group = f"fleetwatch-{dev.hardware_model.split('-', 1)[-1]}"
    message: dict[str, Any] = {
        "ggcVersion": "2.14.3",
        "platform": "linux",
        "architecture": "aarch64" if dev.profile.kind == "jetson" else "amd64",
        "thing": dev.id,
        "overallDeviceStatus": "HEALTHY" if rtm.device_healthy(rt)[i] else "UNHEALTHY",
        "sequenceNumber": int(rt.sequence[i]),
        "timestamp": round(sim.t * 1000),
        "messageType": "COMPLETE" if complete else "PARTIAL",
        "trigger": trigger,
        "components": [_component(sim, i, c, group) for c in sorted(which)],
    }
    if trigger.endswith("DEPLOYMENT"):
        status = rtm.DEPLOYMENT_STATUSES[rt.deployment_status[i]]
        message["deploymentInformation"] = {
            "status": status,
            "statusDetails": {
                "detailedStatus": "SUCCESSFUL"
                if status == "SUCCEEDED"
                else "FAILED_ROLLBACK_NOT_REQUESTED",
                "failureCause": None if status == "SUCCEEDED" else "COMPONENT_BROKEN",
                "errorStack": []
                if status == "SUCCEEDED"
                else ["DEPLOYMENT_FAILURE", "COMPONENT_BROKEN"],
                "errorTypes": [] if status == "SUCCEEDED" else ["USER_COMPONENT_ERROR"],
            },
            "fleetConfigurationArnForStatus": _arn(group),
            "deploymentId": rt.deployment_id[i],
            "unchangedRootComponents": [],
        }
    return message


def nucleus_emitter(sim: Simulator, i: int) -> list[dict[str, Any]]:
    """One nucleus-emitter publish (a JSON array of metrics) for device index ``i``."""
    ts = round(sim.t * 1000)
    system = [
        ("Average", "CpuUsage", "Percent", float(sim.state.cpu[i] * 100.0)),
        ("Count", "TotalNumberOfFDs", "Count", 4096 + int(sim.state.cpu[i] * 2000)),
        ("Count", "SystemMemUsage", "Megabytes", int(sim.state.memory_used[i] // (1024 * 1024))),
    ]
    out = [
        {"A": a, "N": n, "NS": "SystemMetrics", "TS": ts, "U": u, "V": v} for a, n, u, v in system
    ]
    states = [COMPONENT_STATES[s] for s in sim.runtime.comp_state[i]]
    for label in EMITTER_STATES:
        count = sum(1 for s in states if s == label.upper())
        out.append(
            {
                "A": "Count",
                "N": f"NumberOfComponents{label}",
                "NS": "GreengrassComponents",
                "TS": ts + 1,
                "U": "Count",
                "V": count,
            }
        )
    return out
