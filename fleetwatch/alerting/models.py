"""ORM models of alerting: alerts, their transitions, groups, notifications, deliveries, silences.

Every timer of the lifecycle derives from a persisted timestamp (``active_at``, ``starts_at``,
``next_flush_at``, ``ack_expires_at`` ...), so a restarted process resumes exactly where the
last one stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetwatch.db import Base, UTCDateTime, utcnow


class Alert(Base):
    """One alert series, identified by the fingerprint of its label set.

    The row is reused when the same label set fires again; its transitions keep the history.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(32), unique=True)
    rule: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="rule")  # rule | event
    state: Mapped[str] = mapped_column(String(16))  # pending | firing | flapping | resolved
    condition: Mapped[bool] = mapped_column(Boolean, default=True)  # raw rule result
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    device: Mapped[str | None] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(200))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    value: Mapped[float | None] = mapped_column(Float)
    active_at: Mapped[datetime] = mapped_column(UTCDateTime())  # condition true since
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # became firing
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # resolved (or event end)
    last_evaluated: Mapped[datetime] = mapped_column(UTCDateTime())
    last_change_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(200))  # set on manual resolve
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ack_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ack_comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_alerts_state", "state", "ends_at"),
        Index("ix_alerts_device", "device"),
        Index("ix_alerts_rule", "rule"),
    )


class AlertTransition(Base):
    """A change of an alert's raw condition (firing <-> resolved): the flap history."""

    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    to_state: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_alert_transitions_alert_at", "alert_id", "at"),)


class AlertGroup(Base):
    """Alerts a route bundles into one notification stream (route + group_by label values)."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(1000), unique=True)
    route: Mapped[str] = mapped_column(String(200))  # route path, e.g. "0.2"
    receiver: Mapped[str] = mapped_column(String(200))
    group_labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_flush_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_flush_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # fingerprints the receiver was last told are firing; a resolve is owed for each of them
    notified_firing: Mapped[list[str]] = mapped_column(JSON, default=list)
    firing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_acked: Mapped[bool] = mapped_column(Boolean, default=False)
    active_count: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(Integer, default=0)  # flushes so far

    __table_args__ = (Index("ix_alert_groups_next_flush", "next_flush_at"),)


class Notification(Base):
    """One message to one receiver for one group flush; delivered with retries."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(1100), unique=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("alert_groups.id", ondelete="SET NULL"))
    group_key: Mapped[str] = mapped_column(String(1000))
    receiver: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    reason: Mapped[str] = mapped_column(String(32))  # new | changed | repeat | escalation | test
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the version-4 style message body: groupLabels, commonLabels, alerts[] ...
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    delivery_state: Mapped[str] = mapped_column(String(16), default="pending")  # sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a Retry-After longer than we wait in-process defers the next attempt to a later dispatch
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_alert_notifications_state", "delivery_state", "created_at"),)


class DeliveryAttempt(Base):
    """One HTTP attempt of a notification: the delivery log."""

    __tablename__ = "alert_delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("alert_notifications.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    destination: Mapped[str] = mapped_column(String(300))  # scheme://host only; URLs hold secrets
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # sent | retry | failed

    __table_args__ = (Index("ix_alert_delivery_attempts_notification", "notification_id"),)


class Silence(Base):
    """Mutes alerts whose labels match every matcher between starts_at and ends_at."""

    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{name, op, value}]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    mute_resolved: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_alert_silences_ends_at", "ends_at"),)
