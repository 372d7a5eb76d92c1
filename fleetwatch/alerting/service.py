"""Alerting services: evaluate rules, dispatch notifications, acknowledge, silence, announce.

Every function is keyword-only, takes its session explicitly and a ``now`` from the caller's
clock, so the lifecycle is reproducible in tests and resumes after a restart from the state DB
alone. ``evaluate`` and ``dispatch`` are idempotent for a given ``now``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleetwatch.alerting import dispatch as dispatch_mod
from fleetwatch.alerting import outbox
from fleetwatch.alerting.evaluators import EvalContext, Finding, evaluate_rule
from fleetwatch.alerting.lifecycle import apply_findings
from fleetwatch.alerting.matchers import fingerprint, to_matcher
from fleetwatch.alerting.models import Alert, AlertGroup, DeliveryAttempt, Notification, Silence
from fleetwatch.alerting.ruleset import AlertingConfig, load_config
from fleetwatch.alerting.schemas import DispatchSummary, EvaluationSummary
from fleetwatch.plugins import PluginRegistry
from fleetwatch.settings import Settings
from fleetwatch.store.base import MetricsStore

ACTIVE_STATES = ("pending", "firing", "flapping")


class AlertingError(ValueError):
    """A request alerting cannot honour (unknown alert or receiver, bad matcher)."""


def evaluate(
    *,
    db: Session,
    store: MetricsStore,
    now: datetime,
    settings: Settings,
    config: AlertingConfig | None = None,
) -> EvaluationSummary:
    """Run every enabled rule in bulk and move alerts through their lifecycle.

    A rule that fails (store down, bad data) is reported in ``rule_errors`` and its alerts are
    left as they were. Expired event alerts resolve. The caller commits.
    """
    started = time.perf_counter()
    cfg = config or load_config(settings.alerting)
    ctx = EvalContext(db=db, store=store, now=now, external_url=settings.alerting.external_url)
    summary = EvaluationSummary()
    findings: list[Finding] = []
    evaluated: set[str] = set()
    for rule in cfg.rules:
        if not rule.enabled:
            continue
        try:
            found = evaluate_rule(rule, ctx)
        except Exception as exc:  # one broken rule must not stop the others
            summary.rule_errors[rule.name] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        evaluated.add(rule.name)
        findings.extend(found)
    counts = apply_findings(
        db,
        now=now,
        findings=findings,
        rule_for_s={r.name: r.for_s for r in cfg.rules if r.enabled},
        evaluated_rules=evaluated,
        flap_window_s=settings.alerting.flap_window_s,
        flap_threshold=settings.alerting.flap_threshold,
    )
    expired = db.execute(
        update(Alert)
        .where(Alert.kind == "event", Alert.state == "firing", Alert.ends_at <= now)
        .values(state="resolved", last_change_at=now, condition=False)
    )
    summary.rules_evaluated = len(evaluated)
    summary.findings = len(findings)
    summary.events_expired = int(getattr(expired, "rowcount", 0) or 0)
    for name in ("created", "pending", "fired", "resolved", "flapping", "dropped"):
        setattr(summary, name, getattr(counts, name))
    summary.fired_by_rule = counts.fired_by_rule
    summary.seconds = time.perf_counter() - started
    return summary


def dispatch(
    *,
    db: Session,
    now: datetime,
    settings: Settings,
    registry: PluginRegistry,
    config: AlertingConfig | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] | None = None,
) -> DispatchSummary:
    """Flush the groups that are due into notifications and deliver every pending one.

    Commits: first the decisions (groups and notifications together), then each delivery's
    outcome, so a restart at any point neither loses nor repeats a decision.
    """
    started = time.perf_counter()
    cfg = config or load_config(settings.alerting)
    planned = dispatch_mod.plan(db, now=now, settings=settings.alerting, config=cfg)
    db.commit()
    delivered = outbox.deliver_pending(
        db,
        now=now,
        settings=settings.alerting,
        config=cfg,
        registry=registry,
        client=client,
        sleep=sleep,
    )
    return DispatchSummary(
        alerts=planned.alerts,
        muted=planned.muted,
        groups_created=planned.groups_created,
        groups_flushed=planned.groups_flushed,
        groups_deleted=planned.groups_deleted,
        notifications=planned.notifications,
        escalations=planned.escalations,
        sent=delivered.sent,
        failed=delivered.failed,
        deferred=delivered.deferred,
        recorded=delivered.recorded,
        seconds=time.perf_counter() - started,
    )


def announce(
    *,
    db: Session,
    now: datetime,
    title: str,
    labels: Mapping[str, str],
    severity: str,
    description: str,
    ttl_s: float = 3600.0,
) -> Alert:
    """Raise an event-style alert (e.g. an automatic action) that routes like any other.

    It fires at once and resolves by itself after ``ttl_s``. Announcing the same title and
    labels at the same ``now`` twice returns the first alert (a retried task is harmless).
    """
    full = {"alertname": "FleetwatchEvent", **labels, "severity": severity}
    fp = fingerprint({**full, "__title": title, "__at": now.isoformat()})
    existing = db.scalar(select(Alert).where(Alert.fingerprint == fp))
    if existing is not None:
        return existing
    alert = Alert(
        fingerprint=fp,
        rule=full["alertname"],
        kind="event",
        state="firing",
        condition=True,
        severity=severity,
        device=full.get("device"),
        site=full.get("site"),
        labels=full,
        annotations={"summary": title, "description": description},
        value=None,
        active_at=now,
        starts_at=now,
        ends_at=now + timedelta(seconds=ttl_s),
        last_evaluated=now,
        last_change_at=now,
    )
    db.add(alert)
    db.flush()
    return alert


def list_alerts(
    *,
    db: Session,
    state: str | None = None,
    device: str | None = None,
    site: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    active: bool | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[Alert]:
    """Alerts, newest change first, filtered by any of the given fields."""
    q = select(Alert)
    for column, value in (
        (Alert.state, state),
        (Alert.device, device),
        (Alert.site, site),
        (Alert.rule, rule),
        (Alert.severity, severity),
    ):
        if value is not None:
            q = q.where(column == value)
    if active is not None:
        states = Alert.state.in_(ACTIVE_STATES)
        q = q.where(states if active else ~states)
    q = q.order_by(Alert.last_change_at.desc(), Alert.id.desc()).limit(limit).offset(offset)
    return list(db.scalars(q))


def get_alert(*, db: Session, fingerprint: str) -> Alert | None:
    return db.scalar(select(Alert).where(Alert.fingerprint == fingerprint))


def is_acknowledged(alert: Alert, now: datetime) -> bool:
    return alert.ack_expires_at is not None and alert.ack_expires_at > now


def acknowledge(
    *,
    db: Session,
    now: datetime,
    fingerprints: Sequence[str],
    by: str,
    expires_at: datetime | None = None,
    ttl_s: float | None = None,
    comment: str | None = None,
    default_ttl_s: float = 4 * 3600.0,
) -> list[Alert]:
    """Acknowledge alerts until ``expires_at`` (or ``now + ttl_s``); the ack lapses by itself.

    While acknowledged, an alert's group sends no repeats and no escalation; its resolve is
    still sent. The groups holding these alerts flush at the next dispatch so pagers hear it.
    """
    until = expires_at or now + timedelta(seconds=ttl_s or default_ttl_s)
    if until <= now:
        raise AlertingError("an acknowledgement must expire in the future")
    alerts = _alerts(db, fingerprints)
    for alert in alerts:
        if alert.state not in ("firing", "flapping"):
            raise AlertingError(f"alert {alert.fingerprint} is {alert.state}; only firing alerts")
        alert.acknowledged_by, alert.acknowledged_at = by, now
        alert.ack_expires_at, alert.ack_comment = until, comment
    _flush_groups_holding(db, {a.fingerprint for a in alerts}, now)
    db.flush()
    return alerts


def resolve(*, db: Session, now: datetime, fingerprints: Sequence[str], by: str) -> list[Alert]:
    """Resolve by hand; the alert stays resolved until its condition clears and returns."""
    alerts = _alerts(db, fingerprints)
    for alert in alerts:
        if alert.state == "resolved":
            continue
        alert.state, alert.ends_at, alert.resolved_by, alert.last_change_at = (
            "resolved",
            now,
            by,
            now,
        )
        if alert.starts_at is None:  # a pending alert never fired: nothing to announce
            alert.starts_at = now
    _flush_groups_holding(db, {a.fingerprint for a in alerts}, now)
    db.flush()
    return alerts


def _alerts(db: Session, fingerprints: Sequence[str]) -> list[Alert]:
    alerts = list(db.scalars(select(Alert).where(Alert.fingerprint.in_(list(fingerprints)))))
    missing = set(fingerprints) - {a.fingerprint for a in alerts}
    if missing:
        raise AlertingError(f"unknown alert(s): {', '.join(sorted(missing))}")
    return alerts


def _flush_groups_holding(db: Session, fps: set[str], now: datetime) -> None:
    for group in db.scalars(select(AlertGroup)):
        if fps.intersection(group.notified_firing) and group.next_flush_at > now:
            group.next_flush_at = now


def create_silence(
    *,
    db: Session,
    now: datetime,
    matchers: Iterable[Mapping[str, str] | str],
    ends_at: datetime,
    created_by: str,
    comment: str = "",
    starts_at: datetime | None = None,
    mute_resolved: bool = False,
) -> Silence:
    """Mute matching alerts between ``starts_at`` (default now) and ``ends_at``.

    Resolves still go out unless ``mute_resolved`` (or the alerting.silences_mute_resolved
    setting) says otherwise.
    """
    try:
        parsed = [to_matcher(m).as_dict() for m in matchers]
    except (ValueError, KeyError) as exc:
        raise AlertingError(f"bad matcher: {exc}") from None
    if not parsed:
        raise AlertingError("a silence needs at least one matcher")
    start = starts_at or now
    if ends_at <= start:
        raise AlertingError("a silence must end after it starts")
    silence = Silence(
        id=str(uuid.uuid4()),
        matchers=parsed,
        starts_at=start,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
        mute_resolved=mute_resolved,
    )
    db.add(silence)
    db.flush()
    return silence


def silence_matchers_for(*, db: Session, fingerprint: str) -> list[dict[str, str]]:
    """Matchers that pre-fill a silence for one alert: its labels, severity left out."""
    alert = get_alert(db=db, fingerprint=fingerprint)
    if alert is None:
        raise AlertingError(f"unknown alert: {fingerprint}")
    return [
        {"name": k, "op": "=", "value": v}
        for k, v in sorted(alert.labels.items())
        if k != "severity"
    ]


def list_silences(*, db: Session, now: datetime, include_expired: bool = False) -> list[Silence]:
    q = select(Silence).order_by(Silence.created_at.desc())
    if not include_expired:
        q = q.where(Silence.ends_at > now)
    return list(db.scalars(q))


def expire_silence(*, db: Session, now: datetime, silence_id: str) -> Silence | None:
    silence = db.get(Silence, silence_id)
    if silence is not None and silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        db.flush()
    return silence


def list_groups(*, db: Session) -> list[AlertGroup]:
    return list(db.scalars(select(AlertGroup).order_by(AlertGroup.next_flush_at)))


def list_notifications(
    *, db: Session, receiver: str | None = None, state: str | None = None, limit: int = 100
) -> list[Notification]:
    q = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if receiver is not None:
        q = q.where(Notification.receiver == receiver)
    if state is not None:
        q = q.where(Notification.delivery_state == state)
    return list(db.scalars(q))


def deliveries(*, db: Session, notification_ids: Sequence[int]) -> dict[int, list[DeliveryAttempt]]:
    out: dict[int, list[DeliveryAttempt]] = {i: [] for i in notification_ids}
    q = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.notification_id.in_(list(notification_ids)))
        .order_by(DeliveryAttempt.notification_id, DeliveryAttempt.attempt)
    )
    for attempt in db.scalars(q):
        out[attempt.notification_id].append(attempt)
    return out


def test_notifier(
    *,
    db: Session,
    now: datetime,
    settings: Settings,
    registry: PluginRegistry,
    receiver: str,
    config: AlertingConfig | None = None,
    client: httpx.Client | None = None,
) -> Notification:
    """Send a synthetic alert to one receiver right away; the result is in the delivery log."""
    cfg = config or load_config(settings.alerting)
    if cfg.receiver(receiver) is None:
        raise AlertingError(f"unknown receiver {receiver!r}")
    labels = {"alertname": "FleetwatchTest", "severity": "info"}
    view = dispatch_mod.AlertView(
        fingerprint(labels), "firing", labels, {"summary": "fleetwatch test"}, now, None, False
    )
    key = f"test:{receiver}"
    content = dispatch_mod.notification_content(
        receiver=receiver,
        key=key,
        grouping={"alertname": "FleetwatchTest"},
        shown=[view],
        everything=[view],
        external_url=settings.alerting.external_url,
    )
    note = Notification(
        idempotency_key=f"{key}#{uuid.uuid4()}",
        group_id=None,
        group_key=key,
        receiver=receiver,
        status="firing",
        reason="test",
        created_at=now,
        content=content,
        alert_count=1,
        delivery_state="pending",
        attempts=0,
    )
    db.add(note)
    db.commit()
    outbox.deliver_pending(
        db,
        now=now,
        settings=settings.alerting,
        config=cfg,
        registry=registry,
        client=client,
        sleep=lambda _s: None,
        only_id=note.id,
    )
    return note
