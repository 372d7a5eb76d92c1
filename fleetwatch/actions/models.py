"""ORM models of actions: decisions, the audit log, pauses, per-device and per-site gate state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetwatch.db import Base, UTCDateTime, utcnow

# Lifecycle of an action row:
#   planned   dry-run: the gate allowed it, the plan is stored, nothing was written
#   pending   waits for a person's approval        -> approved | rejected
#   approved  allowed (by the gate, and a person where required), not yet applied
#   applying  claimed by one worker (the claim is what makes a redelivery a no-op)
#   in_progress  applied but not finished (a drain waiting on a PDB)
#   applied | refused | rejected | failed | escalated | superseded
ACTION_STATES = (
    "planned",
    "pending",
    "approved",
    "applying",
    "in_progress",
    "applied",
    "refused",
    "rejected",
    "failed",
    "escalated",
    "superseded",
)


class Action(Base):
    """One decision to act on one device, unique per idempotency key."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    policy: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    site_id: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))  # dry-run | act
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)  # why proposed
    gate_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)  # why refused/held
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    lead_time_s: Mapped[float | None] = mapped_column()  # forecast time to failure at decision
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))  # approver / rejecter
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # first apply
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_actions_state", "state", "site_id"),
        Index("ix_actions_device", "device_id", "created_at"),
    )


class AuditEntry(Base):
    """Every decision, refusal, approval, application and expiry, with its reasons."""

    __tablename__ = "action_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    device_id: Mapped[str | None] = mapped_column(String(200))
    site_id: Mapped[str | None] = mapped_column(String(200))
    policy: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str | None] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(32))  # proposed, refused, applied, storm, ...
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    actor: Mapped[str] = mapped_column(String(200), default="fleetwatch")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_action_audit_at", "at"),
        Index("ix_action_audit_site", "site_id", "at"),
    )


class Pause(Base):
    """A named request to stop automatic actions at one site, or everywhere (site NULL)."""

    __tablename__ = "action_pauses"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeviceActionState(Base):
    """What fleetwatch has done to a device and still holds: cordon, drain, upgrade hold."""

    __tablename__ = "action_device_state"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[str] = mapped_column(String(200))
    cordoned: Mapped[bool] = mapped_column(Boolean, default=False)
    cordoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    drain_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drained_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    healthy_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A gateway agent on the device picks this up and releases locally (keadm ctl unhold-upgrade).
    release_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    release_picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_action_device_state_site", "site_id"),)


class SiteActionState(Base):
    """Per-site gate memory: the storm brake and the last drain (for the drain buffer)."""

    __tablename__ = "action_site_state"

    site_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    storm_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    storm_cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_drain_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StoredPolicy(Base):
    """A policy created through the API (settings and the policy file hold the others)."""

    __tablename__ = "action_policies"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
