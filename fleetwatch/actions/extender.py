"""The Kubernetes scheduler-extender endpoints, outside ``/api/v1`` so kube-scheduler's
``urlPrefix`` can point at ``/scheduler/v1``::

    extenders:
      - urlPrefix: "https://fleetwatch.example/scheduler/v1"
        filterVerb: filter
        prioritizeVerb: prioritize
        weight: 5
        nodeCacheCapable: false

Bodies are ``ExtenderArgs`` in, ``ExtenderFilterResult`` / ``HostPriorityList`` out, with the Go
field names of ``k8s.io/kube-scheduler/extender/v1`` (see :mod:`fleetwatch.actions.hints`).
Scope ``read``. kube-scheduler's extender configuration has no bearer-token field: put a proxy
that adds the token in front (or mTLS at an ingress); docs/actions.md shows one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fleetwatch.actions import hints
from fleetwatch.actions.hints_router import placement_hints
from fleetwatch.api.deps import Principal, get_db, get_settings, require_scope
from fleetwatch.settings import Settings

prefix = "/scheduler/v1"
router = APIRouter(tags=["scheduler-extender"])


class ExtenderArgs(BaseModel):
    """``extenderv1.ExtenderArgs``: the pod and its candidate nodes (full or by name)."""

    model_config = ConfigDict(extra="allow")

    Pod: dict[str, Any] | None = Field(None, description="v1.Pod being scheduled")
    Nodes: dict[str, Any] | None = Field(None, description="v1.NodeList of candidates")
    NodeNames: list[str] | None = Field(None, description="candidate names (nodeCacheCapable)")


class ExtenderFilterResult(BaseModel):
    Nodes: dict[str, Any] | None = None
    NodeNames: list[str] | None = None
    FailedNodes: dict[str, str] = Field(default_factory=dict)
    FailedAndUnresolvableNodes: dict[str, str] = Field(default_factory=dict)
    Error: str = ""


class HostPriority(BaseModel):
    Host: str
    Score: int = Field(..., ge=0, le=hints.MAX_EXTENDER_PRIORITY)


def _by_node(
    db: Session, settings: Settings, principal: Principal
) -> dict[str, hints.PlacementHint]:
    return {h.node: h for h in placement_hints(db, settings, principal.site)}


@router.post("/filter", response_model=ExtenderFilterResult)
def extender_filter(
    args: ExtenderArgs,
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> ExtenderFilterResult:
    """Drop nodes fleetwatch is draining or expects to fail; unknown nodes pass."""
    result = hints.extender_filter(args.model_dump(), _by_node(db, settings, principal))
    return ExtenderFilterResult(**result)


@router.post("/prioritize", response_model=list[HostPriority])
def extender_prioritize(
    args: ExtenderArgs,
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> list[HostPriority]:
    """Placement scores as 0..10 (MaxExtenderPriority) per candidate node."""
    ranked = hints.extender_prioritize(args.model_dump(), _by_node(db, settings, principal))
    return [HostPriority(**r) for r in ranked]
