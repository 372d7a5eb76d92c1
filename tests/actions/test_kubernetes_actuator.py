"""The Kubernetes actuator through the real ``kubernetes`` client against the recording fake API."""

from __future__ import annotations

from fleetwatch.actions.kubernetes import (
    HOLD_ANNOTATION,
    KubernetesActuator,
    blocking_budgets,
    classify_pods,
)
from fleetwatch.plugins.actuator import (
    CordonRequest,
    DrainRequest,
    HoldUpgradeRequest,
    ReleaseHoldRequest,
    UncordonRequest,
)
from fleetwatch.plugins.registry import PluginRegistry
from tests.fakes.kubernetes_api import FakeKubernetesApi, node, pdb, pod


def _req(cls: type, node_name: str = "edge-1", key: str = "k1"):  # type: ignore[no-untyped-def]
    return cls(idempotency_key=key, device_id=node_name, site_id="s", node_name=node_name)


def _mixed_node(api: FakeKubernetesApi) -> None:
    api.state.nodes["edge-1"] = node("edge-1")
    api.state.add_pod(pod("web-1", "edge-1", labels={"app": "web"}))
    api.state.add_pod(pod("infer-1", "edge-1", namespace="ml", labels={"app": "infer"}))
    api.state.add_pod(
        pod("fluent-bit-x", "edge-1", namespace="kube-system", owner_kind="DaemonSet")
    )
    api.state.add_pod(
        pod(
            "kube-proxy-edge-1",
            "edge-1",
            namespace="kube-system",
            owner_kind="Node",
            annotations={"kubernetes.io/config.mirror": "abc123"},
        )
    )
    api.state.add_pod(
        pod(
            "db-0",
            "edge-1",
            labels={"app": "db"},
            owner_kind="StatefulSet",
            annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        )
    )
    api.state.add_pod(pod("elsewhere", "edge-2", labels={"app": "web"}))


def test_entry_point_declares_the_actuators() -> None:
    registry = PluginRegistry.from_entry_points(["fleetwatch.actuators"])
    assert registry.names("fleetwatch.actuators") == ["greengrass", "kubernetes"]
    assert registry.get("fleetwatch.actuators", "kubernetes") is KubernetesActuator


def test_plan_reads_but_never_writes(k8s: FakeKubernetesApi, kube: KubernetesActuator) -> None:
    _mixed_node(k8s)
    plan = kube.plan(_req(DrainRequest))
    assert k8s.writes() == []
    assert {r.method for r in k8s.requests} == {"GET"}
    targets = [c.target for c in plan.calls]
    assert targets == [
        "/api/v1/nodes/edge-1",
        "/api/v1/namespaces/default/pods/web-1/eviction",
        "/api/v1/namespaces/ml/pods/infer-1/eviction",
    ]
    assert any("fluent-bit-x" in n and "DaemonSet" in n for n in plan.notes)
    assert any("kube-proxy-edge-1" in n and "mirror" in n for n in plan.notes)
    assert any("db-0" in n and "safe-to-evict" in n for n in plan.notes)


def test_cordon_patches_spec_unschedulable_once(
    k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    k8s.state.nodes["edge-1"] = node("edge-1")
    first = kube.apply(_req(CordonRequest))
    second = kube.apply(_req(CordonRequest))
    writes = k8s.writes()
    assert [(w.method, w.path) for w in writes] == [("PATCH", "/api/v1/nodes/edge-1")]
    assert writes[0].body == {"spec": {"unschedulable": True}}
    assert writes[0].content_type == "application/merge-patch+json"
    assert k8s.state.nodes["edge-1"]["spec"]["unschedulable"] is True
    assert (first.status, first.writes, second.status, second.writes) == ("done", 1, "done", 0)
    kube.apply(_req(UncordonRequest))
    assert "unschedulable" not in k8s.state.nodes["edge-1"]["spec"] or (
        k8s.state.nodes["edge-1"]["spec"]["unschedulable"] is False
    )


def test_drain_evicts_only_the_right_pods(k8s: FakeKubernetesApi, kube: KubernetesActuator) -> None:
    _mixed_node(k8s)
    outcome = kube.apply(_req(DrainRequest))
    posts = [w for w in k8s.writes() if w.method == "POST"]
    assert sorted(w.path for w in posts) == [
        "/api/v1/namespaces/default/pods/web-1/eviction",
        "/api/v1/namespaces/ml/pods/infer-1/eviction",
    ]
    body = posts[0].body
    assert body["apiVersion"] == "policy/v1" and body["kind"] == "Eviction"
    assert body["metadata"]["name"] in {"web-1", "infer-1"}
    left = sorted(name for _, name in k8s.state.pods)
    assert left == ["db-0", "elsewhere", "fluent-bit-x", "kube-proxy-edge-1"]
    assert outcome.status == "done"
    assert k8s.state.nodes["edge-1"]["spec"]["unschedulable"] is True
    assert not any(w.method == "DELETE" for w in k8s.writes())


def test_drain_waits_on_429_and_never_forces(
    k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    _mixed_node(k8s)
    k8s.state.pdbs.append(
        pdb("web-pdb", namespace="default", match_labels={"app": "web"}, allowed=0)
    )
    outcome = kube.apply(_req(DrainRequest))
    assert outcome.status == "in_progress"
    assert outcome.data["blocked"] == ["default/web-1"]
    assert "disruption budget web-pdb" in outcome.detail
    assert outcome.retry_after_s == 5.0
    assert ("default", "web-1") in k8s.state.pods  # still there: waited, not forced
    assert not any(w.method == "DELETE" for w in k8s.writes())
    # The budget frees up (a replica became ready elsewhere): the retry finishes the drain.
    k8s.state.pdbs[0]["status"]["disruptionsAllowed"] = 1
    k8s.clear_requests()
    again = kube.apply(_req(DrainRequest))
    assert again.status == "done"
    assert [w.path for w in k8s.writes()] == ["/api/v1/namespaces/default/pods/web-1/eviction"]


def test_hold_and_release_annotate_the_nodes_pods(
    k8s: FakeKubernetesApi, kube: KubernetesActuator
) -> None:
    _mixed_node(k8s)
    held = kube.apply(_req(HoldUpgradeRequest))
    on_node = [p for p in k8s.state.pods.values() if p["spec"]["nodeName"] == "edge-1"]
    annotated = {
        p["metadata"]["name"]
        for p in on_node
        if p["metadata"]["annotations"].get(HOLD_ANNOTATION) == "true"
    }
    assert annotated == {"web-1", "infer-1", "fluent-bit-x", "db-0"}  # not the mirror pod
    assert held.writes == 4
    assert kube.apply(_req(HoldUpgradeRequest)).writes == 0  # idempotent
    patch = next(w for w in k8s.writes() if w.method == "PATCH")
    assert patch.body == {"metadata": {"annotations": {HOLD_ANNOTATION: "true"}}}
    released = kube.apply(_req(ReleaseHoldRequest))
    assert released.writes == 4
    assert not any(HOLD_ANNOTATION in p["metadata"]["annotations"] for p in k8s.state.pods.values())


def test_pure_classification_and_budgets() -> None:
    pods = [
        pod("a", "n", labels={"app": "x"}),
        pod("b", "n", owner_kind="DaemonSet"),
        pod("c", "n", annotations={"kubernetes.io/config.mirror": "h"}),
        pod("d", "n", annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "False"}),
        pod("e", "n", owner_kind=None),
    ]
    evict, skipped = classify_pods(pods)
    assert [str(p) for p in evict] == ["default/a", "default/e"]
    assert [str(p) for p, _ in skipped] == ["default/b", "default/c", "default/d"]
    budgets = [
        pdb("x-pdb", namespace="default", match_labels={"app": "x"}, allowed=0),
        pdb("other-ns", namespace="prod", match_labels={"app": "x"}, allowed=0),
        pdb("loose", namespace="default", match_labels={"app": "x"}, allowed=2),
    ]
    assert blocking_budgets(evict[0], budgets) == ["default/x-pdb"]
    assert blocking_budgets(evict[1], budgets) == []
