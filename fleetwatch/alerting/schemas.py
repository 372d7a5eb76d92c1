"""Pydantic shapes of alerting's service results and API bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetwatch.alerting.matchers import MatchOp


class EvaluationSummary(BaseModel):
    rules_evaluated: int = 0
    rule_errors: dict[str, str] = Field(default_factory=dict)
    findings: int = 0
    created: int = 0
    pending: int = 0
    fired: int = 0
    resolved: int = 0
    flapping: int = 0
    dropped: int = 0
    events_expired: int = 0
    fired_by_rule: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0


class DispatchSummary(BaseModel):
    alerts: int = 0
    muted: int = 0
    groups_created: int = 0
    groups_flushed: int = 0
    groups_deleted: int = 0
    notifications: int = 0
    escalations: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    recorded: int = 0
    seconds: float = 0.0


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    fingerprint: str
    rule: str
    kind: str
    state: str
    severity: str
    device: str | None
    site: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    active_at: datetime
    starts_at: datetime | None
    ends_at: datetime | None
    last_evaluated: datetime
    acknowledged: bool = False
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_expires_at: datetime | None
    ack_comment: str | None
    resolved_by: str | None


class GroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_key: str
    route: str
    receiver: str
    group_labels: dict[str, str]
    created_at: datetime
    next_flush_at: datetime
    last_notified_at: datetime | None
    active_count: int
    notified_firing: list[str]


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_s: float | None = Field(None, gt=0, le=30 * 86400, description="ack lifetime")
    expires_at: AwareDatetime | None = Field(None, description="instead of expires_in_s")
    comment: str | None = Field(None, max_length=2000)


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    op: MatchOp = "="
    value: str


class SilenceTimes(BaseModel):
    """When a silence applies: from ``starts_at`` (default now) for ``duration_s``, or until
    ``ends_at`` when given."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = Field(None, description="overrides duration_s")
    duration_s: float = Field(7200.0, gt=0, le=90 * 86400)
    comment: str = Field("", max_length=2000)
    mute_resolved: bool = Field(False, description="also hold back resolve notifications")


class SilenceIn(SilenceTimes):
    matchers: list[MatcherIn] = Field(..., min_length=1, max_length=50)


class SilenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    mute_resolved: bool
    state: Literal["pending", "active", "expired"] = "active"


class DeliveryAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    destination: str
    status_code: int | None
    latency_ms: float | None
    error: str | None
    outcome: str


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_key: str
    receiver: str
    status: str
    reason: str
    created_at: datetime
    alert_count: int
    delivery_state: str
    attempts: int
    delivered_at: datetime | None
    deliveries: list[DeliveryAttemptOut] = Field(default_factory=list)


class TestNotifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receiver: str
