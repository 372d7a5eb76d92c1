"""Dispatch: alerts -> routed groups -> notifications due -> deliveries.

Phase one (``plan``) decides, from persisted timestamps only, which groups flush now and writes
their notifications in the same transaction as the group's new state, so a crash either loses
the whole decision (the next run makes it again) or keeps it (the next run delivers it). Phase
two (``deliver_pending``) sends every pending notification and logs each attempt.

Group timers follow Alertmanager: a new group waits ``group_wait`` to collect its first
alerts; afterwards it flushes every ``group_interval`` and sends when something changed (a new
firing alert, a resolve owed, an acknowledgement) or when ``repeat_interval`` passed since the
last message - unless every firing alert is acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from fleetwatch.alerting.config import AlertingSettings
from fleetwatch.alerting.matchers import Matcher, matches_all, to_matcher
from fleetwatch.alerting.models import Alert, AlertGroup, Notification, Silence
from fleetwatch.alerting.routing import (
    ResolvedRoute,
    compile_routes,
    group_key,
    group_labels,
    inhibited,
    match_routes,
    walk,
)
from fleetwatch.alerting.ruleset import AlertingConfig


@dataclass(frozen=True, slots=True)
class AlertView:
    fingerprint: str
    state: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    acknowledged: bool


@dataclass
class Bucket:
    route: ResolvedRoute
    grouping: dict[str, str]
    firing: dict[str, AlertView] = field(default_factory=dict)  # muted ones included
    resolved: dict[str, AlertView] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)


@dataclass
class PlanCounts:
    alerts: int = 0
    muted: int = 0
    groups_created: int = 0
    groups_flushed: int = 0
    groups_deleted: int = 0
    notifications: int = 0
    escalations: int = 0


def load_alerts(db: Session, *, now: datetime, retention_s: float) -> list[AlertView]:
    keep_from = now - timedelta(seconds=retention_s)
    q = select(
        Alert.fingerprint,
        Alert.state,
        Alert.labels,
        Alert.starts_at,
        Alert.active_at,
        Alert.ends_at,
        Alert.ack_expires_at,
    ).where(
        or_(
            Alert.state.in_(("firing", "flapping")),
            (Alert.state == "resolved")
            & Alert.starts_at.is_not(None)
            & (Alert.ends_at >= keep_from),
        )
    )
    views = []
    # annotations are read later, only for the alerts a notification shows
    for fp, state, labels, starts, active, ends, ack_until in db.execute(q):
        notes = {"flapping": "true"} if state == "flapping" else {}
        views.append(
            AlertView(
                fp,
                "resolved" if state == "resolved" else "firing",
                labels,
                notes,
                starts or active,
                ends,
                ack_until is not None and ack_until > now,
            )
        )
    return views


def with_annotations(db: Session, views: list[AlertView]) -> list[AlertView]:
    """The same alerts with their stored annotations (one query per 900 alerts)."""
    found: dict[str, dict[str, str]] = {}
    fps = [v.fingerprint for v in views]
    for start in range(0, len(fps), 900):
        q = select(Alert.fingerprint, Alert.annotations).where(
            Alert.fingerprint.in_(fps[start : start + 900])
        )
        found.update({fp: notes for fp, notes in db.execute(q)})
    return [
        replace(v, annotations={**found.get(v.fingerprint, {}), **v.annotations}) for v in views
    ]


def active_silences(db: Session, now: datetime) -> list[tuple[list[Matcher], bool]]:
    q = select(Silence.matchers, Silence.mute_resolved).where(
        Silence.starts_at <= now, Silence.ends_at > now
    )
    return [([to_matcher(m) for m in ms], bool(mr)) for ms, mr in db.execute(q)]


def bucket_alerts(
    alerts: Iterable[AlertView],
    *,
    root: ResolvedRoute,
    config: AlertingConfig,
    silences: list[tuple[list[Matcher], bool]],
    now: datetime,
    mute_resolved: bool,
) -> tuple[dict[str, Bucket], int]:
    """Route every alert into its groups and mark the muted ones (pure)."""
    alerts = list(alerts)
    firing = {a.fingerprint: a.labels for a in alerts if a.state == "firing"}
    inhibited_fps = inhibited(config.inhibit_rules, firing)
    windows = config.maintenance_windows
    buckets: dict[str, Bucket] = {}
    keys: dict[tuple[object, ...], str] = {}
    muted_count = 0
    for a in alerts:
        if a.state == "resolved":
            muted = any((mr or mute_resolved) and matches_all(ms, a.labels) for ms, mr in silences)
        else:
            muted = (
                a.fingerprint in inhibited_fps
                or any(matches_all(ms, a.labels) for ms, _mr in silences)
                or any(w.mutes(a.labels, now) for w in windows)
            )
        muted_count += muted
        for route in match_routes(root, a.labels):
            grouping = group_labels(route, a.labels)
            cache_key = (route.path, *grouping.items())
            key = keys.get(cache_key) or keys.setdefault(cache_key, group_key(route, grouping))
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = Bucket(route, grouping)
            (bucket.resolved if a.state == "resolved" else bucket.firing)[a.fingerprint] = a
            if muted:
                bucket.muted.add(a.fingerprint)
    return buckets, muted_count


def common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    shared = dict(maps[0])
    for m in maps[1:]:
        shared = {k: v for k, v in shared.items() if m.get(k) == v}
        if not shared:
            break
    return shared


def order_and_cap(
    firing: list[AlertView], resolved: list[AlertView], max_alerts: int
) -> tuple[list[AlertView], list[AlertView]]:
    """Oldest firing first, then resolves; returns (shown, everything)."""
    everything = sorted(firing, key=lambda a: a.starts_at) + sorted(
        resolved, key=lambda a: a.ends_at or a.starts_at
    )
    return (everything[:max_alerts] if max_alerts else everything), everything


def notification_content(
    *,
    receiver: str,
    key: str,
    grouping: Mapping[str, str],
    shown: list[AlertView],
    everything: list[AlertView],
    external_url: str,
) -> dict[str, Any]:
    """The stored message: Alertmanager's fields; commonAnnotations over the shown alerts."""
    return {
        "receiver": receiver,
        "status": "firing" if any(a.state == "firing" for a in everything) else "resolved",
        "groupKey": key,
        "groupLabels": dict(grouping),
        "commonLabels": common([a.labels for a in everything]),
        "commonAnnotations": common([a.annotations for a in shown]),
        "externalURL": external_url,
        "truncatedAlerts": len(everything) - len(shown),
        "alerts": [
            {
                "status": a.state,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": a.starts_at.isoformat(),
                "endsAt": a.ends_at.isoformat() if a.ends_at and a.state == "resolved" else None,
                "generatorURL": f"{external_url}/alerts?fingerprint={a.fingerprint}",
                "fingerprint": a.fingerprint,
                "acknowledged": a.acknowledged,
            }
            for a in shown
        ],
    }


def plan(
    db: Session, *, now: datetime, settings: AlertingSettings, config: AlertingConfig
) -> PlanCounts:
    """Decide which groups flush now and write their notifications (no I/O beyond the DB)."""
    counts = PlanCounts()
    root = compile_routes(config.route)
    routes = {r.path: r for r in walk(root)}
    alerts = load_alerts(db, now=now, retention_s=settings.resolved_retention_s)
    counts.alerts = len(alerts)
    buckets, counts.muted = bucket_alerts(
        alerts,
        root=root,
        config=config,
        silences=active_silences(db, now),
        now=now,
        mute_resolved=settings.silences_mute_resolved,
    )
    groups = _open_groups(db, buckets, now=now, counts=counts)
    db.flush()
    doomed: list[int] = []
    for key, group in groups.items():
        route = routes.get(group.route, root)
        bucket = buckets.get(key) or Bucket(route, dict(group.group_labels))
        _escalate(
            db, group, bucket, route, now=now, settings=settings, config=config, counts=counts
        )
        if now >= group.next_flush_at:
            _flush(
                db, group, bucket, route, now=now, settings=settings, config=config, counts=counts
            )
            if not group.notified_firing and not bucket.firing:
                doomed.append(group.id)
    if doomed:
        db.execute(delete(AlertGroup).where(AlertGroup.id.in_(doomed)))
        counts.groups_deleted = len(doomed)
    db.flush()
    return counts


def _open_groups(
    db: Session, buckets: dict[str, Bucket], *, now: datetime, counts: PlanCounts
) -> dict[str, AlertGroup]:
    """Every stored group, plus a new one for each bucket with an unmuted firing alert."""
    groups = {g.group_key: g for g in db.scalars(select(AlertGroup))}
    for key, bucket in buckets.items():
        if key in groups or not set(bucket.firing) - bucket.muted:
            continue
        group = AlertGroup(
            group_key=key,
            route=bucket.route.path,
            receiver=bucket.route.receiver,
            group_labels=bucket.grouping,
            created_at=now,
            next_flush_at=now + timedelta(seconds=bucket.route.group_wait_s),
            notified_firing=[],
            firing_since=now,
            active_count=len(bucket.firing),
            seq=0,
            notified_acked=False,
        )
        db.add(group)
        groups[key] = group
        counts.groups_created += 1
    return groups


def _flush(
    db: Session,
    group: AlertGroup,
    bucket: Bucket,
    route: ResolvedRoute,
    *,
    now: datetime,
    settings: AlertingSettings,
    config: AlertingConfig,
    counts: PlanCounts,
) -> None:
    receiver = config.receiver(group.receiver)
    send_resolved = receiver.send_resolved if receiver else True
    notified = set(group.notified_firing)
    live = {fp: a for fp, a in bucket.firing.items() if fp not in bucket.muted}
    owed = notified - set(bucket.firing)  # resolved (or gone) since the receiver heard
    resolved = [bucket.resolved[fp] for fp in owed if fp in bucket.resolved]
    resolved = [a for a in resolved if a.fingerprint not in bucket.muted]
    acked = bool(live) and all(a.acknowledged for a in live.values())
    changed = bool(set(live) - notified) or (bool(resolved) and send_resolved)
    changed = changed or (bool(live) and acked != group.notified_acked)
    last = group.last_notified_at
    repeat = (
        bool(live)
        and not acked
        and last is not None
        and (now - last).total_seconds() >= route.repeat_interval_s
    )
    counts.groups_flushed += 1
    if changed or repeat:
        _add_notification(
            db,
            group,
            receiver_name=group.receiver,
            firing=list(live.values()),
            resolved=resolved if send_resolved else [],
            reason="changed" if changed else "repeat",
            now=now,
            settings=settings,
            max_alerts=receiver.max_alerts if receiver else 0,
        )
        group.last_notified_at = now
        counts.notifications += 1
    group.notified_firing = sorted((notified - owed) | set(live))
    group.notified_acked = acked
    group.last_flush_at = now
    group.next_flush_at = now + timedelta(seconds=route.group_interval_s)
    group.active_count = len(bucket.firing)


def _escalate(
    db: Session,
    group: AlertGroup,
    bucket: Bucket,
    route: ResolvedRoute,
    *,
    now: datetime,
    settings: AlertingSettings,
    config: AlertingConfig,
    counts: PlanCounts,
) -> None:
    """Page ``escalate_to`` once when a group fired unacknowledged for ``escalate_after``."""
    live = [a for fp, a in bucket.firing.items() if fp not in bucket.muted]
    unacked = [a for a in live if not a.acknowledged]
    if not live:
        group.firing_since, group.escalated_at = None, None
        return
    if group.firing_since is None:
        group.firing_since = now
    since = group.firing_since
    if not (route.escalate_after_s and route.escalate_to) or group.escalated_at is not None:
        return
    if not unacked or (now - since).total_seconds() < route.escalate_after_s:
        return
    receiver = config.receiver(route.escalate_to)
    _add_notification(
        db,
        group,
        receiver_name=route.escalate_to,
        firing=unacked,
        resolved=[],
        reason="escalation",
        now=now,
        settings=settings,
        max_alerts=receiver.max_alerts if receiver else 0,
    )
    group.escalated_at = now
    counts.escalations += 1


def _add_notification(
    db: Session,
    group: AlertGroup,
    *,
    receiver_name: str,
    firing: list[AlertView],
    resolved: list[AlertView],
    reason: str,
    now: datetime,
    settings: AlertingSettings,
    max_alerts: int,
) -> None:
    group.seq += 1
    shown, everything = order_and_cap(firing, resolved, max_alerts)
    content = notification_content(
        receiver=receiver_name,
        key=group.group_key,
        grouping=group.group_labels,
        shown=with_annotations(db, shown),
        everything=everything,
        external_url=settings.external_url,
    )
    db.add(
        Notification(
            idempotency_key=f"{group.group_key}#{group.created_at.isoformat()}#{group.seq}#{reason}",
            group_id=group.id,
            group_key=group.group_key,
            receiver=receiver_name,
            status=content["status"],
            reason=reason,
            created_at=now,
            content=content,
            alert_count=len(firing) + len(resolved),
            delivery_state="pending",
            attempts=0,
        )
    )


Sleep = Callable[[float], None]
ClientFactory = Callable[[], httpx.Client]
