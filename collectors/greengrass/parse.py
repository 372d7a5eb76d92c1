"""Greengrass v2 JSON to fleetwatch samples: fleet status (FSS), nucleus emitter, cloud API.

Pure functions over decoded JSON (dicts and lists as ``json.loads`` or boto3 return them). Each
bad field or list item becomes one :class:`CollectError`; the rest of the message is kept.

State-like values become one series per possible state, kube-state-metrics style: a component in
RUNNING gives ``component_state{state="RUNNING"} 1`` and ``0`` for each other state, so a
dashboard can sum by state and an alert can fire on ``state="BROKEN" == 1`` without string
values (docs/metrics.md explains the choice).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleetwatch.plugins import CollectError, CollectResult, make_sample
from fleetwatch.plugins.catalogue import COMPONENT_STATES, DEPLOYMENT_STATUSES
from fleetwatch.telemetry import now_ms

MIB = 1024 * 1024  # the emitter's "Megabytes" are MiB (the nucleus divides bytes by 1024²)
SITE_TAG = "fleetwatch:site"  # a core device tag that sets the site label (cloud collector)
_HEALTH = {"HEALTHY": 1.0, "UNHEALTHY": 0.0}
_COMPONENT_COUNT_RE = re.compile(r"NumberOfComponents([A-Za-z]+)")
_WORD_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def parse_message(
    obj: Any,
    *,
    device: str | None = None,
    site: str = "default",
    source: str = "",
    timestamp_ms: int | None = None,
) -> CollectResult:
    """A fleet status object (a dict) or an emitter publish (a list), told apart by shape."""
    if isinstance(obj, list):
        return parse_emitter(
            obj, device=device, site=site, source=source, timestamp_ms=timestamp_ms
        )
    return parse_fleet_status(
        obj, device=device, site=site, source=source, timestamp_ms=timestamp_ms
    )


def parse_fleet_status(
    obj: Any,
    *,
    device: str | None = None,
    site: str = "default",
    source: str = "",
    timestamp_ms: int | None = None,
) -> CollectResult:
    """One FSS message from ``$aws/things/<thing>/greengrassv2/health/json``.

    Gives ``device_healthy``, one ``component_state`` series per state for each listed
    component and, for a deployment trigger, ``deployment_status``. Only a COMPLETE message
    (all components; chunks reassembled) also gives ``component_count`` per state: a PARTIAL one
    lists only the components that changed. ``device`` overrides the payload's ``thing``.
    """
    result = CollectResult()
    if not isinstance(obj, Mapping):
        result.errors.append(
            CollectError(source, f"fleet status must be a JSON object, got {_kind(obj)}")
        )
        return result
    errors = result.errors
    thing = obj.get("thing")
    name = device or (thing if isinstance(thing, str) and thing else None)
    if name is None:
        errors.append(
            CollectError(source, "fleet status without a thing name and no device configured")
        )
        return result
    ts = _timestamp(obj.get("timestamp"), "timestamp", source, errors, timestamp_ms)
    base = {"device": name, "site": site}
    status = obj.get("overallDeviceStatus")
    if status in _HEALTH:
        result.samples.append(make_sample("device_healthy", base, _HEALTH[status], ts))
    else:
        errors.append(
            CollectError(source, f"overallDeviceStatus {status!r} is not HEALTHY/UNHEALTHY")
        )
    complete = obj.get("messageType") == "COMPLETE" and not _is_chunk(obj)
    if obj.get("messageType") not in ("COMPLETE", "PARTIAL"):
        errors.append(
            CollectError(source, f"messageType {obj.get('messageType')!r} is not COMPLETE/PARTIAL")
        )
    components = obj.get("components", [])
    if not isinstance(components, list):
        errors.append(CollectError(source, f"components must be a list, got {_kind(components)}"))
        components = []
        complete = False
    counts = dict.fromkeys(COMPONENT_STATES, 0)
    for i, item in enumerate(components):
        parsed = _component(item, f"components[{i}]", source, errors)
        if parsed is None:
            complete = False  # a count that misses a component would be wrong
            continue
        component, state = parsed
        counts[state] = counts.get(state, 0) + 1
        result.samples.extend(
            _one_per_state(
                "component_state", {**base, "component": component}, state, COMPONENT_STATES, ts
            )
        )
    if complete:
        for state, count in counts.items():
            result.samples.append(
                make_sample("component_count", {**base, "state": state}, count, ts)
            )
    info = obj.get("deploymentInformation")
    if info is not None:
        result.samples.extend(_deployment(info, base, ts, source, errors))
    return result


def parse_emitter(
    obj: Any,
    *,
    device: str | None = None,
    site: str = "default",
    source: str = "",
    timestamp_ms: int | None = None,
) -> CollectResult:
    """One publish of ``aws.greengrass.telemetry.NucleusEmitter``: a JSON array of metrics.

    ``CpuUsage`` -> ``cpu_utilization_ratio``, ``SystemMemUsage`` -> ``memory_used_bytes``,
    ``TotalNumberOfFDs`` -> ``open_file_descriptors``, ``NumberOfComponents<State>`` ->
    ``component_count{state}``; metrics this does not know are kept as
    ``greengrass_<namespace>_<name>``. The payload names no device: pass ``device``.
    """
    result = CollectResult()
    if not isinstance(obj, list):
        result.errors.append(
            CollectError(source, f"emitter payload must be a JSON array, got {_kind(obj)}")
        )
        return result
    if not device:
        result.errors.append(
            CollectError(source, "emitter payload names no device and none is configured")
        )
        return result
    base = {"device": device, "site": site}
    for i, item in enumerate(obj):
        where = f"[{i}]"
        if not isinstance(item, Mapping):
            result.errors.append(
                CollectError(source, f"{where}: metric must be an object, got {_kind(item)}")
            )
            continue
        name, namespace, value = item.get("N"), item.get("NS"), item.get("V")
        if not isinstance(name, str) or not name or not isinstance(namespace, str):
            result.errors.append(CollectError(source, f"{where}: N and NS must be text"))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            result.errors.append(
                CollectError(source, f"{where} {name}: V {value!r} is not a number")
            )
            continue
        ts = _timestamp(item.get("TS"), f"{where} {name}: TS", source, result.errors, timestamp_ms)
        sample = _emitter_sample(namespace, name, float(value), base, ts)
        if sample is None:
            result.errors.append(
                CollectError(source, f"{where}: cannot name metric {namespace}/{name}")
            )
        else:
            result.samples.append(sample)
    return result


def _emitter_sample(namespace: str, name: str, value: float, base: dict[str, str], ts: int) -> Any:
    if namespace == "SystemMetrics" and name == "CpuUsage":
        return make_sample("cpu_utilization_ratio", base, value / 100.0, ts)
    if namespace == "SystemMetrics" and name == "SystemMemUsage":
        return make_sample("memory_used_bytes", base, value * MIB, ts)
    if namespace == "SystemMetrics" and name == "TotalNumberOfFDs":
        return make_sample("open_file_descriptors", base, value, ts)
    match = _COMPONENT_COUNT_RE.fullmatch(name)
    if namespace == "GreengrassComponents" and match:
        return make_sample("component_count", {**base, "state": match.group(1).upper()}, value, ts)
    raw = f"greengrass_{_snake(namespace)}_{_snake(name)}"
    if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", raw):
        return None
    return make_sample(raw, base, value, ts)


# --- cloud API responses (boto3 greengrassv2) -------------------------------------------------


def site_of(core_device: Mapping[str, Any], default: str) -> str:
    """The site label of a core device: its ``fleetwatch:site`` tag, else ``default``."""
    tags = core_device.get("tags")
    if isinstance(tags, Mapping):
        site = tags.get(SITE_TAG)
        if isinstance(site, str) and site:
            return site
    return default


def parse_core_device(
    response: Any,
    *,
    site: str = "default",
    timestamp_ms: int | None = None,
    source: str = "GetCoreDevice",
) -> CollectResult:
    """``GetCoreDevice`` (or a ``ListCoreDevices`` item): ``device_healthy`` of that device."""
    result = CollectResult()
    if not isinstance(response, Mapping):
        result.errors.append(
            CollectError(source, f"response must be an object, got {_kind(response)}")
        )
        return result
    thing = response.get("coreDeviceThingName")
    if not isinstance(thing, str) or not thing:
        result.errors.append(CollectError(source, "coreDeviceThingName missing"))
        return result
    status = response.get("status")
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    if status in _HEALTH:
        result.samples.append(
            make_sample("device_healthy", {"device": thing, "site": site}, _HEALTH[status], ts)
        )
    else:
        result.errors.append(
            CollectError(source, f"{thing}: status {status!r} is not HEALTHY/UNHEALTHY")
        )
    return result


def parse_installed_components(
    components: Any,
    *,
    device: str,
    site: str = "default",
    timestamp_ms: int | None = None,
    source: str = "ListInstalledComponents",
) -> CollectResult:
    """``installedComponents`` items: one ``component_state`` series per lifecycle state."""
    return _state_listing(
        components,
        _Listing("installedComponents", "componentName", "lifecycleState", "component_state",
                 "component", "state", COMPONENT_STATES),
        device=device, site=site, timestamp_ms=timestamp_ms, source=source,
    )  # fmt: skip


def parse_effective_deployments(
    deployments: Any,
    *,
    device: str,
    site: str = "default",
    timestamp_ms: int | None = None,
    source: str = "ListEffectiveDeployments",
) -> CollectResult:
    """``effectiveDeployments`` items: one ``deployment_status`` series per execution status."""
    return _state_listing(
        deployments,
        _Listing("effectiveDeployments", "deploymentId", "coreDeviceExecutionStatus",
                 "deployment_status", "deployment", "status", DEPLOYMENT_STATUSES),
        device=device, site=site, timestamp_ms=timestamp_ms, source=source,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Listing:
    """How one greengrassv2 list response maps to one-series-per-state samples."""

    key: str  # the list in the response
    name_field: str  # the item's identity (component name, deployment id)
    state_field: str  # the item's state
    metric: str
    label: str  # the label carrying the identity
    state_label: str  # the label carrying the state
    states: tuple[str, ...]


def _state_listing(
    value: Any,
    listing: _Listing,
    *,
    device: str,
    site: str,
    timestamp_ms: int | None,
    source: str,
) -> CollectResult:
    result = CollectResult()
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    base = {"device": device, "site": site}
    for i, item in enumerate(_items(value, listing.key, source, result.errors)):
        if not isinstance(item, Mapping):
            result.errors.append(
                CollectError(source, f"[{i}]: must be an object, got {_kind(item)}")
            )
            continue
        name, state = item.get(listing.name_field), item.get(listing.state_field)
        if not isinstance(name, str) or not name or not isinstance(state, str) or not state:
            result.errors.append(
                CollectError(
                    source, f"[{i}]: {listing.name_field} and {listing.state_field} must be text"
                )
            )
            continue
        result.samples.extend(
            _one_per_state(
                listing.metric,
                {**base, listing.label: name},
                state,
                listing.states,
                ts,
                key=listing.state_label,
            )
        )
    return result


# --- helpers ----------------------------------------------------------------------------------


def _one_per_state(
    name: str,
    labels: dict[str, str],
    current: str,
    states: Iterable[str],
    ts: int,
    key: str = "state",
) -> list[Any]:
    known = list(states)
    if current not in known:
        known.append(current)  # e.g. FSS-only STATELESS: still one series, valued 1
    return [make_sample(name, {**labels, key: s}, 1.0 if s == current else 0.0, ts) for s in known]


def _component(
    item: Any, where: str, source: str, errors: list[CollectError]
) -> tuple[str, str] | None:
    if not isinstance(item, Mapping):
        errors.append(CollectError(source, f"{where}: must be an object, got {_kind(item)}"))
        return None
    name, state = item.get("componentName"), item.get("status")
    if not isinstance(name, str) or not name:
        errors.append(CollectError(source, f"{where}: componentName must be text"))
        return None
    if not isinstance(state, str) or not state:
        errors.append(CollectError(source, f"{where} {name}: status must be text"))
        return None
    return name, state


def _deployment(
    info: Any, base: dict[str, str], ts: int, source: str, errors: list[CollectError]
) -> list[Any]:
    if not isinstance(info, Mapping):
        errors.append(
            CollectError(source, f"deploymentInformation must be an object, got {_kind(info)}")
        )
        return []
    deployment, status = info.get("deploymentId"), info.get("status")
    if (
        not isinstance(deployment, str)
        or not deployment
        or not isinstance(status, str)
        or not status
    ):
        errors.append(
            CollectError(source, "deploymentInformation: deploymentId and status must be text")
        )
        return []
    return _one_per_state(
        "deployment_status",
        {**base, "deployment": deployment},
        status,
        DEPLOYMENT_STATUSES,
        ts,
        key="status",
    )


def _items(value: Any, key: str, source: str, errors: list[CollectError]) -> list[Any]:
    """A list of items, or a whole boto3 response holding them under ``key``."""
    if isinstance(value, Mapping):
        value = value.get(key, [])
    if not isinstance(value, list):
        errors.append(CollectError(source, f"{key} must be a list, got {_kind(value)}"))
        return []
    return value


def _timestamp(
    value: Any, what: str, source: str, errors: list[CollectError], fallback: int | None
) -> int:
    # 1e11 ms is March 1973: anything smaller is not a millisecond timestamp from a device
    if isinstance(value, int) and not isinstance(value, bool) and 1e11 <= value < 1e14:
        return value
    if value is not None:
        errors.append(CollectError(source, f"{what} {value!r} is not epoch milliseconds"))
    return now_ms() if fallback is None else fallback


def _is_chunk(obj: Mapping[str, Any]) -> bool:
    info = obj.get("chunkInfo")
    return isinstance(info, Mapping) and info.get("totalChunks", 1) != 1


def _snake(text: str) -> str:
    return _WORD_RE.sub("_", text).lower()


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
