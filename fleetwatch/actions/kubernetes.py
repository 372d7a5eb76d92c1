"""Kubernetes/KubeEdge actuator: cordon, drain through the Eviction API, KubeEdge upgrade holds.

- cordon/uncordon: merge-patch ``spec.unschedulable`` on the node (skipped when already so).
- drain: cordon, then evict the node's pods through ``policy/v1`` Eviction, which the API server
  refuses with 429 while a PodDisruptionBudget allows no disruption: that means *wait and call
  again* (``in_progress``), never delete. DaemonSet pods (their controller recreates them on the
  node anyway), mirror pods (static pods owned by the kubelet) and pods annotated
  ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`` are left alone, as kubectl drain and
  the cluster autoscaler do. The service escalates a drain blocked past its timeout to a person.
- hold/release upgrades: KubeEdge skips a node's edge upgrade while its pods carry the annotation
  ``edge.kubeedge.io/hold-upgrade: "true"``; release removes it. A gateway agent on the node may
  also release locally (``keadm ctl unhold-upgrade``) from the release request the service keeps.

The pure functions (:func:`classify_pods`, :func:`blocking_budgets`) work on the API's JSON.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from kubernetes import client
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from fleetwatch.actions.config import KubernetesActuatorSettings
from fleetwatch.plugins.actuator import (
    ActionRequest,
    Actuator,
    ActuatorCapabilities,
    Outcome,
    Plan,
    PlannedCall,
)

log = logging.getLogger(__name__)

HOLD_ANNOTATION = "edge.kubeedge.io/hold-upgrade"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
MERGE_PATCH = "application/merge-patch+json"
_ALREADY = {"cordon": "cordoned", "drain": "cordoned", "uncordon": "schedulable"}


@dataclass(frozen=True, slots=True)
class PodRef:
    namespace: str
    name: str
    labels: dict[str, str]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _ref(obj: dict[str, Any]) -> PodRef:
    meta = obj.get("metadata") or {}
    return PodRef(meta.get("namespace", "default"), meta["name"], dict(meta.get("labels") or {}))


def classify_pods(pods: list[dict[str, Any]]) -> tuple[list[PodRef], list[tuple[PodRef, str]]]:
    """Split a node's pods (API JSON) into those to evict and those left alone, with why."""
    evict: list[PodRef] = []
    skipped: list[tuple[PodRef, str]] = []
    for obj in pods:
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        ref = _ref(obj)
        owners = meta.get("ownerReferences") or []
        if MIRROR_ANNOTATION in annotations:
            skipped.append((ref, "mirror pod (static, owned by the kubelet)"))
        elif any(o.get("kind") == "DaemonSet" for o in owners):
            skipped.append((ref, "DaemonSet pod (recreated on the node anyway)"))
        elif str(annotations.get(SAFE_TO_EVICT, "")).lower() == "false":
            skipped.append((ref, f'{SAFE_TO_EVICT}: "false"'))
        elif meta.get("deletionTimestamp"):
            skipped.append((ref, "already terminating"))
        else:
            evict.append(ref)
    return evict, skipped


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels.get(key) in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def blocking_budgets(pod: PodRef, pdbs: list[dict[str, Any]]) -> list[str]:
    """PodDisruptionBudgets covering the pod that allow no disruption now."""
    out = []
    for budget in pdbs:
        meta, spec = budget.get("metadata") or {}, budget.get("spec") or {}
        if meta.get("namespace") != pod.namespace or "selector" not in spec:
            continue
        allowed = (budget.get("status") or {}).get("disruptionsAllowed", 0)
        if _selects(spec["selector"] or {}, pod.labels) and allowed <= 0:
            out.append(f"{pod.namespace}/{meta.get('name')}")
    return out


def api_client_from(config: KubernetesActuatorSettings) -> ApiClient:
    """An ApiClient for a host + token, or a kubeconfig."""
    if config.kubeconfig is not None:
        from kubernetes import config as kubeconfig

        return kubeconfig.new_client_from_config(
            config_file=str(config.kubeconfig), context=config.context
        )
    if config.host is None:
        raise ValueError("[actions.kubernetes] needs host (+ token) or kubeconfig")
    conf = Configuration(host=config.host)
    if config.token is not None:
        conf.api_key = {"BearerToken": config.token.get_secret_value()}
        conf.api_key_prefix = {"BearerToken": "Bearer"}
    conf.verify_ssl = config.verify_ssl
    if config.ca_cert is not None:
        conf.ssl_ca_cert = str(config.ca_cert)
    return ApiClient(conf)


class KubernetesActuator(Actuator):
    """Cordon, drain, uncordon and hold KubeEdge upgrades on the device's node."""

    name: ClassVar[str] = "kubernetes"
    config_model = KubernetesActuatorSettings
    capabilities = ActuatorCapabilities(
        kinds=frozenset({"cordon", "drain", "uncordon", "hold_upgrade", "release_hold"}),
        description="Kubernetes/KubeEdge nodes: spec.unschedulable, Eviction API, hold-upgrade",
    )

    def __init__(
        self, config: KubernetesActuatorSettings, *, api_client: ApiClient | None = None
    ) -> None:
        super().__init__(config)
        self.settings = config
        self.api_client = api_client or api_client_from(config)
        self.core = client.CoreV1Api(self.api_client)
        self.policy = client.PolicyV1Api(self.api_client)

    def handles(self, request: ActionRequest) -> bool:
        return request.node_name is not None and request.kind in self.capabilities.kinds

    def close(self) -> None:
        self.api_client.close()

    # Reads ---------------------------------------------------------------------------------
    def _json(self, obj: Any) -> Any:
        return self.api_client.sanitize_for_serialization(obj)

    def _unschedulable(self, node: str) -> bool:
        spec = self.core.read_node(node).spec
        return bool(spec is not None and spec.unschedulable)

    def _pods(self, node: str) -> list[dict[str, Any]]:
        found = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}")
        return [self._json(p) for p in found.items]

    def _pdbs(self) -> list[dict[str, Any]]:
        found = self.policy.list_pod_disruption_budget_for_all_namespaces()
        return [self._json(b) for b in found.items]

    # Calls ---------------------------------------------------------------------------------
    @staticmethod
    def _cordon_call(node: str, on: bool) -> PlannedCall:
        return PlannedCall(
            "PATCH",
            f"/api/v1/nodes/{node}",
            {"spec": {"unschedulable": on}},
            "cordon" if on else "uncordon",
        )

    @staticmethod
    def _hold_call(pod: PodRef, on: bool) -> PlannedCall:
        value = "true" if on else None
        return PlannedCall(
            "PATCH",
            f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}",
            {"metadata": {"annotations": {HOLD_ANNOTATION: value}}},
            "hold upgrade" if on else "release upgrade hold",
        )

    @staticmethod
    def _evict_call(pod: PodRef) -> PlannedCall:
        return PlannedCall(
            "POST", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/eviction", None, "evict"
        )

    def _hold_targets(self, node: str, on: bool) -> list[PodRef]:
        out = []
        for obj in self._pods(node):
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if MIRROR_ANNOTATION in annotations:
                continue  # the kubelet owns mirror pods; annotating them has no effect
            if (annotations.get(HOLD_ANNOTATION) == "true") != on:
                out.append(_ref(obj))
        return out

    def plan(self, request: ActionRequest) -> Plan:
        node = request.node_name
        if node is None:
            return Plan(request, feasible=False, notes=("device has no Kubernetes node",))
        kind = request.kind
        if kind in ("cordon", "drain", "uncordon"):
            on = kind != "uncordon"
            calls = [] if self._unschedulable(node) == on else [self._cordon_call(node, on)]
            notes: list[str] = [] if calls else [f"node {node} already {_ALREADY[kind]}"]
            if kind == "drain":
                evict, skipped = classify_pods(self._pods(node))
                pdbs = self._pdbs()
                calls += [self._evict_call(p) for p in evict]
                notes += [f"skip {p}: {why}" for p, why in skipped]
                for p in evict:
                    blocking = blocking_budgets(p, pdbs)
                    if blocking:
                        notes.append(f"{p} waits on PodDisruptionBudget {', '.join(blocking)}")
            return Plan(request, tuple(calls), True, tuple(notes))
        if kind in ("hold_upgrade", "release_hold"):
            on = kind == "hold_upgrade"
            calls = [self._hold_call(p, on) for p in self._hold_targets(node, on)]
            return Plan(request, tuple(calls), True, () if calls else ("nothing to change",))
        return Plan(request, feasible=False, notes=(f"{kind} is not a Kubernetes action",))

    def apply(self, request: ActionRequest) -> Outcome:
        node = request.node_name
        if node is None or request.kind not in self.capabilities.kinds:
            return Outcome("unsupported", f"{request.kind} needs a Kubernetes node")
        kind = request.kind
        if kind in ("cordon", "uncordon"):
            writes = self._set_unschedulable(node, kind == "cordon")
            return Outcome("done", f"node {node} {kind}ed" if writes else "no change", writes)
        if kind == "drain":
            return self._drain(node)
        on = kind == "hold_upgrade"
        writes = 0
        for pod in self._hold_targets(node, on):
            try:
                self.core.patch_namespaced_pod(
                    pod.name,
                    pod.namespace,
                    {"metadata": {"annotations": {HOLD_ANNOTATION: "true" if on else None}}},
                    _content_type=MERGE_PATCH,
                )
                writes += 1
            except ApiException as exc:
                if exc.status != 404:  # a pod that left the node needs no annotation
                    raise
        return Outcome("done", f"{writes} pod(s) {'held' if on else 'released'} on {node}", writes)

    def _set_unschedulable(self, node: str, on: bool) -> int:
        if self._unschedulable(node) == on:
            return 0
        self.core.patch_node(node, {"spec": {"unschedulable": on}}, _content_type=MERGE_PATCH)
        return 1

    def _evict(self, pod: PodRef) -> tuple[str, float | None, str]:
        grace = self.settings.eviction_grace_period_s
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace),
            delete_options=(
                client.V1DeleteOptions(grace_period_seconds=grace) if grace is not None else None
            ),
        )
        try:
            self.core.create_namespaced_pod_eviction(pod.name, pod.namespace, body)
        except ApiException as exc:
            if exc.status == 404:
                return "gone", None, ""
            if exc.status == 429:
                return "blocked", _retry_after(exc), _status_message(exc)
            raise
        return "evicted", None, ""

    def _drain(self, node: str) -> Outcome:
        writes = self._set_unschedulable(node, True)
        evict, skipped = classify_pods(self._pods(node))
        evicted: list[str] = []
        blocked: list[str] = []
        messages: list[str] = []
        retry: list[float] = []
        for pod in evict:
            result, after, message = self._evict(pod)
            if result == "evicted":
                writes += 1
                evicted.append(str(pod))
            elif result == "blocked":
                blocked.append(str(pod))
                messages.append(f"{pod}: {message}")
                retry.append(after or 5.0)
        remaining, _ = classify_pods(self._pods(node))
        data = {
            "evicted": evicted,
            "blocked": blocked,
            "skipped": [f"{p}: {why}" for p, why in skipped],
            "remaining": [str(p) for p in remaining],
        }
        if not remaining:
            return Outcome(
                "done", f"node {node} drained ({len(evicted)} evicted)", writes, None, data
            )
        detail = (
            f"{len(blocked)} pod(s) wait on a disruption budget: {'; '.join(messages)}"
            if blocked
            else f"{len(remaining)} pod(s) still terminating"
        )
        return Outcome("in_progress", detail, writes, min(retry) if retry else 5.0, data)


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason or "")
    causes = (body.get("details") or {}).get("causes") or []
    return "; ".join(c.get("message", "") for c in causes) or body.get("message", "")
