"""Pydantic schemas of actions: API bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetwatch.actions.config import Workload


class ActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    policy: str
    kind: str = Field(..., examples=["drain"])
    device_id: str
    site_id: str
    state: str = Field(
        ...,
        description="planned | pending | approved | applying | in_progress | "
        "applied | refused | rejected | failed | superseded",
    )
    mode: str = Field(..., description="dry-run | act")
    reasons: list[str] = Field(..., description="why a policy proposed it")
    gate_reasons: list[str] = Field(..., description="the gate's verdict and why")
    plan: dict[str, Any] | None = Field(None, description="the writes it would make (dry-run)")
    outcome: dict[str, Any] | None = None
    lead_time_s: float | None = Field(None, description="forecast time to the limit at decision")
    created_at: datetime
    updated_at: datetime
    decided_by: str | None = None
    started_at: datetime | None = None
    escalated_at: datetime | None = None


class ActionPage(BaseModel):
    items: list[ActionOut]
    total: int
    limit: int
    offset: int


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    action_id: int | None
    device_id: str | None
    site_id: str | None
    policy: str | None
    kind: str | None
    event: str = Field(..., examples=["refused"])
    reasons: list[str]
    actor: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,100}$", examples=["firmware-freeze"])
    site_id: str | None = Field(
        None, pattern=r"^[^\n\r\x00/]{1,200}$", description="one site; null pauses every site"
    )
    reason: str = Field("", max_length=2000)
    expires_at: AwareDatetime | None = Field(None, description="lifted by itself at this time")


class PauseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    site_id: str | None
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None


class DeviceStateOut(BaseModel):
    """What fleetwatch holds on a device: cordon, drain, upgrade hold, pending release."""

    model_config = ConfigDict(from_attributes=True)

    device_id: str
    site_id: str
    cordoned: bool
    cordoned_at: datetime | None
    draining: bool
    drain_started_at: datetime | None
    drained_at: datetime | None
    held: bool
    held_at: datetime | None
    hold_expires_at: datetime | None
    healthy_since: datetime | None
    release_requested_at: datetime | None
    release_picked_up_at: datetime | None


class PolicyOut(BaseModel):
    name: str
    action: str
    when: dict[str, Any]
    sites: list[str]
    enabled: bool
    description: str
    source: Literal["settings", "file", "api", "built-in"]


class PlacementOut(BaseModel):
    node: str
    device_id: str
    site_id: str
    score: int = Field(..., ge=0, le=100, description="higher = a better home for new work")
    advice: Literal["avoid", "neutral", "prefer"]
    reasons: list[str]


class WorkloadHintOut(BaseModel):
    name: str
    replicas: int
    per_replica_load: float
    max_replicas_now: int
    max_replicas_forecast: int
    suggested_change: int = Field(
        ..., description="negative: replicas that will not fit on the nodes healthy at horizon"
    )


class SiteCapacityOut(BaseModel):
    site_id: str
    nodes: int
    capacity_now: float = Field(..., description="usable nodes now, in node units")
    capacity_forecast: float = Field(..., description="nodes still healthy at the horizon")
    demand: float = Field(..., description="declared load of the workloads, in node units")
    headroom_now_ratio: float
    headroom_forecast_ratio: float
    horizon_s: float
    workloads: list[WorkloadHintOut]


class ScalingIn(BaseModel):
    """Workloads to size, with their load per replica; the configured ones are used if empty."""

    model_config = ConfigDict(extra="forbid")

    workloads: list[Workload] = Field(default_factory=list)
