"""A recording fake of the Kubernetes API server, for the endpoints fleetwatch's actuator uses.

It is a real HTTP server on loopback (threads) speaking the real JSON: objects in their
apiVersion/kind/metadata/spec/status shape, lists as ``{"kind": "PodList", "items": [...]}``,
errors as ``Status`` objects, PATCH as JSON merge patch (RFC 7386, ``application/merge-patch+json``
or the strategic-merge content type, which for these fields behaves the same), and the eviction
subresource answering 201, 404, or 429 when a PodDisruptionBudget allows no disruption. Every
request is recorded (method, path, query, content type, body) so tests can assert what was written.

Endpoints:
    GET/PATCH /api/v1/nodes/{name}
    GET       /api/v1/pods?fieldSelector=spec.nodeName=<node>
    GET/PATCH /api/v1/namespaces/{ns}/pods/{name}
    POST      /api/v1/namespaces/{ns}/pods/{name}/eviction
    GET       /apis/policy/v1/poddisruptionbudgets
    GET       /apis/policy/v1/namespaces/{ns}/poddisruptionbudgets
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


def node(name: str, *, unschedulable: bool = False, labels: dict[str, str] | None = None) -> dict:
    spec: dict[str, Any] = {"podCIDR": "10.244.0.0/24"}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-node-{name}",
            "resourceVersion": "1",
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
            "annotations": {},
        },
        "spec": spec,
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {
                "architecture": "arm64",
                "bootID": f"boot-{name}",
                "containerRuntimeVersion": "containerd://1.7.13",
                "kernelVersion": "5.15.136-tegra",
                "kubeProxyVersion": "v1.29.3",
                "kubeletVersion": "v1.29.3",
                "machineID": f"machine-{name}",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS",
                "systemUUID": f"uuid-{name}",
            },
        },
    }


def pod(
    name: str,
    node_name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    owner_kind: str | None = "ReplicaSet",
    annotations: dict[str, str] | None = None,
) -> dict:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-pod-{namespace}-{name}",
        "resourceVersion": "1",
        "labels": dict(labels or {}),
        "annotations": dict(annotations or {}),
    }
    if owner_kind is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner_kind,
                "name": f"{name}-owner",
                "uid": f"uid-owner-{name}",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "main", "image": "registry.example/app:1.0"}],
        },
        "status": {"phase": "Running"},
    }


def pdb(name: str, *, namespace: str, match_labels: dict[str, str], allowed: int) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-pdb-{name}"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(match_labels)}},
        "status": {
            "currentHealthy": 1,
            "desiredHealthy": 1,
            "disruptionsAllowed": allowed,
            "expectedPods": 1,
            "observedGeneration": 1,
        },
    }


def status(code: int, reason: str, message: str, **details: Any) -> dict:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class ClusterState:
    nodes: dict[str, dict] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict] = field(default_factory=dict)
    pdbs: list[dict] = field(default_factory=list)

    def add_pod(self, obj: dict) -> None:
        self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj


class FakeKubernetesApi:
    """Start with ``with FakeKubernetesApi() as api:``; ``api.url`` is the host for the client."""

    def __init__(self) -> None:
        self.state = ClusterState()
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKubernetesApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def writes(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method in WRITE_METHODS]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # Routing -------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple:
        routes = [
            (r"^/api/v1/nodes/([^/]+)$", self._node),
            (r"^/api/v1/pods$", self._pods_all),
            (r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)$", self._pod),
            (r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction$", self._eviction),
            (r"^/apis/policy/v1/poddisruptionbudgets$", self._pdbs),
            (r"^/apis/policy/v1/namespaces/([^/]+)/poddisruptionbudgets$", self._pdbs),
        ]
        for pattern, fn in routes:
            m = re.match(pattern, path)
            if m:
                return fn(method, query, body, *m.groups())
        return 404, status(404, "NotFound", f"the server could not find {path}")

    def _node(self, method: str, query: dict, body: Any, name: str) -> tuple:
        obj = self.state.nodes.get(name)
        if obj is None:
            return 404, status(
                404, "NotFound", f'nodes "{name}" not found', name=name, kind="nodes"
            )
        if method == "GET":
            return 200, obj
        if method == "PATCH":
            self.state.nodes[name] = merge_patch(obj, body)
            return 200, self.state.nodes[name]
        return 405, status(405, "MethodNotAllowed", f"{method} not allowed")

    def _pods_all(self, method: str, query: dict, body: Any) -> tuple:
        selector = (query.get("fieldSelector") or [""])[0]
        wanted = None
        if selector:
            key, _, value = selector.partition("=")
            if key != "spec.nodeName":
                return 400, status(400, "BadRequest", f"field label not supported: {key}")
            wanted = value
        items = [
            p for p in self.state.pods.values() if wanted is None or p["spec"]["nodeName"] == wanted
        ]
        return 200, {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "100"},
            "items": items,
        }

    def _pod(self, method: str, query: dict, body: Any, ns: str, name: str) -> tuple:
        obj = self.state.pods.get((ns, name))
        if obj is None:
            return 404, status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods")
        if method == "GET":
            return 200, obj
        if method == "PATCH":
            self.state.pods[(ns, name)] = merge_patch(obj, body)
            return 200, self.state.pods[(ns, name)]
        return 405, status(405, "MethodNotAllowed", f"{method} not allowed")

    def _covering_pdbs(self, obj: dict) -> list[dict]:
        labels = obj["metadata"].get("labels") or {}
        out = []
        for budget in self.state.pdbs:
            if budget["metadata"]["namespace"] != obj["metadata"]["namespace"]:
                continue
            match = budget["spec"]["selector"].get("matchLabels", {})
            if all(labels.get(k) == v for k, v in match.items()):
                out.append(budget)
        return out

    def _eviction(self, method: str, query: dict, body: Any, ns: str, name: str) -> tuple:
        if method != "POST":
            return 405, status(405, "MethodNotAllowed", f"{method} not allowed")
        if not isinstance(body, dict) or body.get("kind") != "Eviction":
            return 400, status(400, "BadRequest", "body must be a policy/v1 Eviction")
        obj = self.state.pods.get((ns, name))
        if obj is None:
            return 404, status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods")
        for budget in self._covering_pdbs(obj):
            if budget["status"]["disruptionsAllowed"] <= 0:
                bname = budget["metadata"]["name"]
                return 429, status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    causes=[
                        {
                            "reason": "DisruptionBudget",
                            "message": f"The disruption budget {bname} needs 1 healthy pods "
                            "and has 1 currently",
                        }
                    ],
                )
        for budget in self._covering_pdbs(obj):
            budget["status"]["disruptionsAllowed"] -= 1
        del self.state.pods[(ns, name)]
        return 201, status(201, "", "")

    def _pdbs(self, method: str, query: dict, body: Any, ns: str | None = None) -> tuple:
        items = [b for b in self.state.pdbs if ns is None or b["metadata"]["namespace"] == ns]
        return 200, {
            "kind": "PodDisruptionBudgetList",
            "apiVersion": "policy/v1",
            "metadata": {"resourceVersion": "100"},
            "items": items,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                query = parse_qs(split.query)
                with fake.lock:
                    fake.requests.append(Recorded(self.command, split.path, query, ctype, body))
                    if self.command == "PATCH" and ctype not in MERGE_TYPES:
                        code, answer = (
                            415,
                            status(
                                415, "UnsupportedMediaType", f"PATCH with {ctype!r} not supported"
                            ),
                        )
                    else:
                        code, answer = fake.handle(self.command, split.path, query, body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code == 429:
                    self.send_header("Retry-After", "5")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler
