"""Sending pending notifications through their receivers' notifier plugins.

A notification row is committed before it is sent (by :func:`fleetwatch.alerting.dispatch.plan`),
so a notification survives a crash and is sent by the next dispatch. Each notification's
outcome is committed on its own, so one crash loses at most the outcome of one delivery (and
resends it: delivery is at-least-once; PagerDuty's dedup_key and the webhook's group key make
a duplicate harmless).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import httpx
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fleetwatch.alerting import selfmetrics
from fleetwatch.alerting.config import AlertingSettings
from fleetwatch.alerting.delivery import AttemptRecord, DeliveryOutcome, RetryPolicy, deliver
from fleetwatch.alerting.models import DeliveryAttempt, Notification
from fleetwatch.alerting.ruleset import AlertingConfig, Receiver
from fleetwatch.plugins import PluginError, PluginRegistry
from fleetwatch.plugins.notifier import (
    DestinationError,
    NotificationAlert,
    Notifier,
    check_destination,
)
from fleetwatch.plugins.notifier import Notification as Message

log = logging.getLogger(__name__)


@dataclass
class DeliveryCounts:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    recorded: int = 0


class ReceiverError(ValueError):
    """A receiver's notifier is unknown, misconfigured or points at a refused destination."""


def make_notifier(
    receiver: Receiver, *, registry: PluginRegistry, settings: AlertingSettings
) -> Notifier:
    """Instantiate and validate a receiver's notifier; errors never echo secret values."""
    assert receiver.notifier is not None
    try:
        cls = cast(type[Notifier], registry.get("fleetwatch.notifiers", receiver.notifier))
        notifier = cls.from_mapping(receiver.config)
    except PluginError as exc:
        raise ReceiverError(f"receiver {receiver.name!r}: {exc}") from None
    except ValidationError as exc:
        fields = ", ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ReceiverError(f"receiver {receiver.name!r} config: {fields}") from None
    try:
        check_destination(notifier.destination_url(), settings.allowed_http_hosts)
    except DestinationError as exc:
        raise ReceiverError(f"receiver {receiver.name!r}: {exc}") from None
    return notifier


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def message_from_content(content: dict[str, Any], *, key: str, now: datetime) -> Message:
    alerts = tuple(
        NotificationAlert(
            status=a["status"],
            labels=a["labels"],
            annotations=a["annotations"],
            starts_at=datetime.fromisoformat(a["startsAt"]),
            ends_at=_time(a.get("endsAt")),
            fingerprint=a["fingerprint"],
            generator_url=a.get("generatorURL", ""),
            acknowledged=bool(a.get("acknowledged")),
        )
        for a in content["alerts"]
    )
    return Message(
        receiver=content["receiver"],
        group_key=content["groupKey"],
        status=content["status"],
        group_labels=content["groupLabels"],
        common_labels=content["commonLabels"],
        common_annotations=content["commonAnnotations"],
        alerts=alerts,
        external_url=content["externalURL"],
        timestamp=now,
        truncated_alerts=int(content.get("truncatedAlerts", 0)),
        notification_id=key,
    )


def deliver_pending(
    db: Session,
    *,
    now: datetime,
    settings: AlertingSettings,
    config: AlertingConfig,
    registry: PluginRegistry,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] | None = None,
    only_id: int | None = None,
) -> DeliveryCounts:
    """Send every due pending notification and log its attempts; commits per notification."""
    q = select(Notification).where(
        Notification.delivery_state == "pending",
        or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
    )
    if only_id is not None:
        q = q.where(Notification.id == only_id)
    pending = list(db.scalars(q.order_by(Notification.id)))
    if not pending:
        return DeliveryCounts()
    http = client or httpx.Client(timeout=settings.timeout_s, follow_redirects=False)
    outbox = _Outbox(db, now, settings, config, registry, http, sleep or time.sleep)
    try:
        for note in pending:
            outbox.deliver(note)
            db.commit()
    finally:
        if client is None:
            http.close()
    return outbox.counts


@dataclass
class _Outbox:
    """What the deliveries of one dispatch share: clock, client, notifiers, counters."""

    db: Session
    now: datetime
    settings: AlertingSettings
    config: AlertingConfig
    registry: PluginRegistry
    client: httpx.Client
    sleep: Callable[[float], None]
    counts: DeliveryCounts = field(default_factory=DeliveryCounts)
    notifiers: dict[str, Notifier | ReceiverError | None] = field(default_factory=dict)

    def notifier_for(self, name: str) -> Notifier | ReceiverError | None:
        if name not in self.notifiers:
            receiver = self.config.receiver(name)
            try:
                self.notifiers[name] = (
                    make_notifier(receiver, registry=self.registry, settings=self.settings)
                    if receiver is not None and receiver.notifier
                    else None
                )
            except ReceiverError as exc:
                self.notifiers[name] = exc
        return self.notifiers[name]

    def deliver(self, note: Notification) -> None:
        notifier = self.notifier_for(note.receiver)
        if notifier is None:  # a receiver without a notifier only records
            note.delivery_state = "recorded"
            self.counts.recorded += 1
            return
        if isinstance(notifier, ReceiverError):
            failed = AttemptRecord(
                note.attempts + 1, self.now, "-", None, 0.0, str(notifier), "failed"
            )
            self.record(note, DeliveryOutcome(state="failed", attempts=[failed]))
            return
        message = message_from_content(note.content, key=note.idempotency_key, now=self.now)
        policy = RetryPolicy(
            self.settings.max_attempts, self.settings.retry_backoff_s, self.settings.retry_max_s
        )
        outcome = deliver(
            notifier,
            notifier.build(message),
            client=self.client,
            policy=policy,
            now=self.now,
            first_attempt=note.attempts + 1,
            sleep=self.sleep,
            rng=random.Random(),
        )
        self.record(note, outcome)

    def record(self, note: Notification, outcome: DeliveryOutcome) -> None:
        for a in outcome.attempts:
            selfmetrics.DELIVERY_ATTEMPTS.labels(note.receiver, a.outcome).inc()
            selfmetrics.DELIVERY_SECONDS.labels(note.receiver).observe(a.latency_ms / 1000.0)
            self.db.add(
                DeliveryAttempt(
                    notification_id=note.id,
                    attempt=a.attempt,
                    at=a.at,
                    destination=a.destination,
                    status_code=a.status_code,
                    latency_ms=a.latency_ms,
                    error=a.error,
                    outcome=a.outcome,
                )
            )
        note.attempts += len(outcome.attempts)
        note.delivery_state = outcome.state
        note.next_attempt_at = outcome.next_attempt_at
        if outcome.state == "sent":
            note.delivered_at = outcome.attempts[-1].at
            self.counts.sent += 1
            selfmetrics.NOTIFICATIONS_SENT.labels(note.receiver).inc()
        elif outcome.state == "failed":
            self.counts.failed += 1
            selfmetrics.NOTIFICATION_FAILURES.labels(note.receiver).inc()
            last = outcome.attempts[-1]
            # the destination is scheme://host only: receiver URLs can carry tokens
            log.warning(
                "notification %s to %s failed after %d attempt(s): %s %s",
                note.id,
                last.destination,
                note.attempts,
                last.status_code,
                (last.error or "")[:200],
            )
        else:
            self.counts.deferred += 1
