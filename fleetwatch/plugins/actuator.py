"""The actuator contract: typed side effects on an orchestrator, planned apart from applied.

An actuator carries out one kind of orchestrator action (cordon, drain, hold upgrades, ...) on one
orchestrator (Kubernetes/KubeEdge, Greengrass). Every action reaches it through fleetwatch's safety
gate; the actuator itself never decides *whether* to act, only *how*. To add one:

1. Create ``fleetwatch/actions/<orchestrator>.py`` with a pydantic ``config_model`` (described
   fields, ``SecretStr`` for secrets) and an :class:`Actuator` subclass that takes an injectable
   client. Copy ``fleetwatch/actions/kubernetes.py``.
2. Declare it in ``pyproject.toml`` under ``[project.entry-points."fleetwatch.actuators"]``.
3. Test ``plan`` (no write calls) and ``apply`` (idempotent: twice = once) against a fake that
   speaks the orchestrator's real wire format (``tests/fakes/``) or botocore's Stubber.

``plan(request)`` may read but never writes. ``apply(request)`` is idempotent under the request's
``idempotency_key``: applying an already-applied request changes nothing and reports ``done``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

ActionKind = Literal[
    "cordon", "drain", "hold_upgrade", "release_hold", "uncordon", "cancel_rollout"
]
ACTION_KINDS: tuple[ActionKind, ...] = (
    "cordon",
    "drain",
    "hold_upgrade",
    "release_hold",
    "uncordon",
    "cancel_rollout",
)
OutcomeStatus = Literal["done", "in_progress", "blocked", "unsupported", "failed"]


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One action on one device; ``node_name``/``thing_name`` address it per orchestrator."""

    idempotency_key: str
    device_id: str
    site_id: str
    node_name: str | None = None
    thing_name: str | None = None  # Greengrass core device (IoT thing) name
    reason: str = ""
    kind: ClassVar[ActionKind]


@dataclass(frozen=True, slots=True)
class CordonRequest(ActionRequest):
    """Mark the node unschedulable; running work stays."""

    kind: ClassVar[ActionKind] = "cordon"


@dataclass(frozen=True, slots=True)
class DrainRequest(ActionRequest):
    """Cordon, then evict the node's pods through the Eviction API (PDBs respected)."""

    kind: ClassVar[ActionKind] = "drain"


@dataclass(frozen=True, slots=True)
class HoldUpgradeRequest(ActionRequest):
    """Stop upgrades from landing on the device until released (or the hold expires)."""

    kind: ClassVar[ActionKind] = "hold_upgrade"


@dataclass(frozen=True, slots=True)
class ReleaseHoldRequest(ActionRequest):
    """Let held upgrades proceed."""

    kind: ClassVar[ActionKind] = "release_hold"


@dataclass(frozen=True, slots=True)
class UncordonRequest(ActionRequest):
    """Make the node schedulable again after it recovered."""

    kind: ClassVar[ActionKind] = "uncordon"


@dataclass(frozen=True, slots=True)
class CancelRolloutRequest(ActionRequest):
    """Cancel a rollout (e.g. a Greengrass deployment); the gate always requires approval."""

    deployment_id: str = ""
    kind: ClassVar[ActionKind] = "cancel_rollout"


REQUEST_TYPES: dict[ActionKind, type[ActionRequest]] = {
    "cordon": CordonRequest,
    "drain": DrainRequest,
    "hold_upgrade": HoldUpgradeRequest,
    "release_hold": ReleaseHoldRequest,
    "uncordon": UncordonRequest,
    "cancel_rollout": CancelRolloutRequest,
}


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One write the actuator would make: e.g. ``PATCH /api/v1/nodes/n1``."""

    method: str
    target: str
    body: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``apply`` would do, computed without writing. ``feasible`` False says why in notes."""

    request: ActionRequest
    calls: tuple[PlannedCall, ...] = ()
    feasible: bool = True
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.request.kind,
            "feasible": self.feasible,
            "calls": [
                {"method": c.method, "target": c.target, "body": c.body, "note": c.note}
                for c in self.calls
            ],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``apply`` did. ``in_progress``: call again later (e.g. an eviction answered 429)."""

    status: OutcomeStatus
    detail: str = ""
    writes: int = 0
    retry_after_s: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "writes": self.writes,
            "retry_after_s": self.retry_after_s,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class ActuatorCapabilities:
    """What an actuator can do, as data."""

    kinds: frozenset[ActionKind]
    description: str = ""


class Actuator(ABC):
    """Base class of every actuator plugin."""

    plugin_group: ClassVar[str] = "fleetwatch.actuators"
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    capabilities: ClassVar[ActuatorCapabilities]

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    def handles(self, request: ActionRequest) -> bool:
        """Whether this actuator acts on the request's device (e.g. it has a node name)."""
        return request.kind in self.capabilities.kinds

    @abstractmethod
    def plan(self, request: ActionRequest) -> Plan:
        """The writes ``apply`` would make. May read; must never write."""

    @abstractmethod
    def apply(self, request: ActionRequest) -> Outcome:
        """Carry the request out; idempotent (a second call with the same request is a no-op)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""
