"""REST endpoints of alerting: alerts, groups, acknowledgements, silences, the delivery log.

Reading needs scope ``read``; acknowledging, resolving, silencing and testing a notifier need
``alerts``. A token bound to a site sees and changes that site's alerts only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from fleetwatch.alerting import service
from fleetwatch.alerting.models import Alert, Silence
from fleetwatch.alerting.ruleset import RulesError
from fleetwatch.alerting.schemas import (
    AckIn,
    AlertOut,
    DeliveryAttemptOut,
    GroupOut,
    MatcherIn,
    NotificationOut,
    SilenceIn,
    SilenceOut,
    SilenceTimes,
    TestNotifierIn,
)
from fleetwatch.api.deps import Principal, get_db, get_settings, require_scope
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.db import utcnow
from fleetwatch.plugins import PluginRegistry
from fleetwatch.settings import Settings

router = APIRouter(tags=["alerts"])

_FINGERPRINT = Path(..., pattern=r"^[0-9a-f]{16}$", description="alert fingerprint")
AlertState = Literal["pending", "firing", "flapping", "resolved"]


@cache
def _registry() -> PluginRegistry:
    return PluginRegistry.from_entry_points(["fleetwatch.notifiers"])


def alert_out(alert: Alert, now: datetime) -> AlertOut:
    out = AlertOut.model_validate(alert)
    out.acknowledged = service.is_acknowledged(alert, now)
    return out


def silence_out(silence: Silence, now: datetime) -> SilenceOut:
    out = SilenceOut.model_validate(silence)
    out.state = (
        "pending" if silence.starts_at > now else "active" if silence.ends_at > now else "expired"
    )
    return out


def _own(alert: Alert | None, principal: Principal) -> Alert:
    if alert is None or (principal.site is not None and alert.site != principal.site):
        raise ApiError(404, "alert not found")
    return alert


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(
    state: AlertState | None = None,
    device: str | None = Query(None, max_length=200),
    site: str | None = Query(None, max_length=200),
    rule: str | None = Query(None, max_length=200),
    severity: Literal["critical", "error", "warning", "info"] | None = None,
    active: bool | None = Query(None, description="pending/firing/flapping (true) or not"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[AlertOut]:
    """Alerts, most recently changed first."""
    if principal.site is not None:
        site = principal.site
    now = utcnow()
    alerts = service.list_alerts(
        db=db,
        state=state,
        device=device,
        site=site,
        rule=rule,
        severity=severity,
        active=active,
        limit=limit,
        offset=offset,
    )
    return [alert_out(a, now) for a in alerts]


@router.get("/alerts/{fingerprint}", response_model=AlertOut, responses=error_responses(404))
def get_alert(
    fingerprint: str = _FINGERPRINT,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> AlertOut:
    return alert_out(_own(service.get_alert(db=db, fingerprint=fingerprint), principal), utcnow())


@router.post(
    "/alerts/{fingerprint}/ack", response_model=AlertOut, responses=error_responses(404, 409)
)
def acknowledge(
    body: AckIn,
    fingerprint: str = _FINGERPRINT,
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("alerts")),
) -> AlertOut:
    """Acknowledge until ``expires_at`` / ``expires_in_s`` (default from settings)."""
    _own(service.get_alert(db=db, fingerprint=fingerprint), principal)
    now = utcnow()
    try:
        (alert,) = service.acknowledge(
            db=db,
            now=now,
            fingerprints=[fingerprint],
            by=principal.name,
            expires_at=body.expires_at,
            ttl_s=body.expires_in_s,
            comment=body.comment,
            default_ttl_s=settings.alerting.default_ack_s,
        )
    except service.AlertingError as exc:
        raise ApiError(409, str(exc)) from None
    return alert_out(alert, now)


@router.post(
    "/alerts/{fingerprint}/resolve", response_model=AlertOut, responses=error_responses(404)
)
def resolve(
    fingerprint: str = _FINGERPRINT,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("alerts")),
) -> AlertOut:
    """Resolve by hand; it stays resolved until its condition clears and returns."""
    _own(service.get_alert(db=db, fingerprint=fingerprint), principal)
    now = utcnow()
    (alert,) = service.resolve(db=db, now=now, fingerprints=[fingerprint], by=principal.name)
    return alert_out(alert, now)


@router.get(
    "/alerts/{fingerprint}/silence-matchers",
    response_model=list[MatcherIn],
    responses=error_responses(404),
)
def silence_matchers(
    fingerprint: str = _FINGERPRINT,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[MatcherIn]:
    """Matchers pre-filling a silence for this alert (its labels without severity)."""
    _own(service.get_alert(db=db, fingerprint=fingerprint), principal)
    found = service.silence_matchers_for(db=db, fingerprint=fingerprint)
    return [MatcherIn.model_validate(m) for m in found]


@router.get("/alert-groups", response_model=list[GroupOut])
def list_groups(
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[GroupOut]:
    groups = service.list_groups(db=db)
    if principal.site is not None:
        groups = [g for g in groups if g.group_labels.get("site") == principal.site]
    return [GroupOut.model_validate(g) for g in groups]


@router.get("/silences", response_model=list[SilenceOut])
def list_silences(
    include_expired: bool = False,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[SilenceOut]:
    now = utcnow()
    found = service.list_silences(db=db, now=now, include_expired=include_expired)
    return [silence_out(s, now) for s in found]


def _silence(
    db: Session, principal: Principal, matchers: list[dict[str, str]], body: SilenceTimes
) -> SilenceOut:
    now = utcnow()
    if principal.site is not None:
        matchers = [*matchers, {"name": "site", "op": "=", "value": principal.site}]
    start = body.starts_at or now
    try:
        ends_at = body.ends_at or start + timedelta(seconds=body.duration_s)
        silence = service.create_silence(
            db=db,
            now=now,
            matchers=matchers,
            ends_at=ends_at,
            starts_at=start,
            created_by=principal.name,
            comment=body.comment,
            mute_resolved=body.mute_resolved,
        )
    except OverflowError:
        raise ApiError(409, "silence times are out of range") from None
    except service.AlertingError as exc:
        # schema-valid but refused: a bad regex, or an end before the start
        raise ApiError(409, str(exc)) from None
    return silence_out(silence, now)


@router.post(
    "/silences", response_model=SilenceOut, status_code=201, responses=error_responses(409)
)
def create_silence(
    body: SilenceIn,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("alerts")),
) -> SilenceOut:
    """Silence alerts matching every matcher; resolves still go out unless mute_resolved."""
    return _silence(db, principal, [m.model_dump() for m in body.matchers], body)


@router.post(
    "/alerts/{fingerprint}/silence",
    response_model=SilenceOut,
    status_code=201,
    responses=error_responses(404, 409),
)
def silence_alert(
    body: SilenceTimes,
    fingerprint: str = _FINGERPRINT,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("alerts")),
) -> SilenceOut:
    """Silence this alert: matchers pre-filled from its labels (severity left out)."""
    _own(service.get_alert(db=db, fingerprint=fingerprint), principal)
    return _silence(
        db, principal, service.silence_matchers_for(db=db, fingerprint=fingerprint), body
    )


@router.delete("/silences/{silence_id}", response_model=SilenceOut, responses=error_responses(404))
def expire_silence(
    silence_id: str = Path(..., max_length=36),
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("alerts")),
) -> SilenceOut:
    """Expire a silence now (it stays listed with include_expired)."""
    now = utcnow()
    silence = service.expire_silence(db=db, now=now, silence_id=silence_id)
    if silence is None:
        raise ApiError(404, "silence not found")
    return silence_out(silence, now)


@router.get("/notifications", response_model=list[NotificationOut])
def list_notifications(
    receiver: str | None = Query(None, max_length=200),
    state: Literal["pending", "sent", "failed", "recorded"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[NotificationOut]:
    """The delivery log: notifications with every attempt (status code, latency, error)."""
    notes = service.list_notifications(db=db, receiver=receiver, state=state, limit=limit)
    attempts = service.deliveries(db=db, notification_ids=[n.id for n in notes])
    out = []
    for note in notes:
        item = NotificationOut.model_validate(note)
        item.deliveries = [DeliveryAttemptOut.model_validate(a) for a in attempts[note.id]]
        out.append(item)
    return out


@router.post("/notifiers/test", response_model=NotificationOut, responses=error_responses(404))
def test_notifier(
    body: TestNotifierIn,
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("alerts")),
) -> NotificationOut:
    """Send a test alert to one receiver now and return its delivery record."""
    try:
        note = service.test_notifier(
            db=db, now=utcnow(), settings=settings, registry=_registry(), receiver=body.receiver
        )
    except (service.AlertingError, RulesError) as exc:
        raise ApiError(404, str(exc)) from None
    item = NotificationOut.model_validate(note)
    found = service.deliveries(db=db, notification_ids=[note.id])
    item.deliveries = [DeliveryAttemptOut.model_validate(a) for a in found[note.id]]
    return item
