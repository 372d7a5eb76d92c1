"""Reading and keeping the records: audit log, pauses, approvals, holds, drains, policies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from fleetwatch.actions.config import Policy
from fleetwatch.actions.models import Action, AuditEntry, DeviceActionState, Pause, StoredPolicy


class RecordError(ValueError):
    """The request conflicts with the stored state (approving an applied action, ...)."""


class NotFound(LookupError):
    pass


def audit(
    *,
    db: Session,
    now: datetime,
    event: str,
    reasons: Sequence[str] = (),
    action: Action | None = None,
    site_id: str | None = None,
    device_id: str | None = None,
    actor: str = "fleetwatch",
    detail: dict[str, object] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log (every decision, refusal and change lands here)."""
    entry = AuditEntry(
        at=now,
        action_id=action.id if action is not None else None,
        device_id=action.device_id if action is not None else device_id,
        site_id=action.site_id if action is not None else site_id,
        policy=action.policy if action is not None else None,
        kind=action.kind if action is not None else None,
        event=event,
        reasons=list(reasons),
        actor=actor,
        detail=dict(detail or {}),
    )
    db.add(entry)
    db.flush()
    return entry


def list_audit(
    *,
    db: Session,
    site: str | None = None,
    device: str | None = None,
    event: str | None = None,
    action_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    query = select(AuditEntry)
    if site is not None:
        query = query.where(AuditEntry.site_id == site)
    if device is not None:
        query = query.where(AuditEntry.device_id == device)
    if event is not None:
        query = query.where(AuditEntry.event == event)
    if action_id is not None:
        query = query.where(AuditEntry.action_id == action_id)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total)


def list_actions(
    *,
    db: Session,
    states: Sequence[str] | None = None,
    site: str | None = None,
    device: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Action], int]:
    query = select(Action)
    if states:
        query = query.where(Action.state.in_(list(states)))
    if site is not None:
        query = query.where(Action.site_id == site)
    if device is not None:
        query = query.where(Action.device_id == device)
    if kind is not None:
        query = query.where(Action.kind == kind)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(Action.created_at.desc(), Action.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total)


def get_action(*, db: Session, action_id: int) -> Action | None:
    return db.get(Action, action_id)


def decide_approval(
    *, db: Session, action_id: int, approve: bool, actor: str, now: datetime, comment: str = ""
) -> Action:
    """pending → approved (applied by the next pass, through the gate again) or rejected."""
    row = db.get(Action, action_id)
    if row is None:
        raise NotFound(f"no action {action_id}")
    if row.state != "pending":
        raise RecordError(f"action {action_id} is {row.state}, not pending")
    row.state = "approved" if approve else "rejected"
    row.decided_by = actor
    row.updated_at = now
    audit(
        db=db,
        now=now,
        event=row.state,
        action=row,
        actor=actor,
        reasons=[comment] if comment else [],
    )
    return row


# Pauses --------------------------------------------------------------------------------------
def create_pause(
    *,
    db: Session,
    name: str,
    site_id: str | None,
    reason: str,
    actor: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> Pause:
    if db.get(Pause, name) is not None:
        raise RecordError(f"a pause named {name!r} exists")
    row = Pause(
        name=name,
        site_id=site_id,
        reason=reason,
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    audit(
        db=db,
        now=now,
        event="paused",
        site_id=site_id,
        actor=actor,
        reasons=[f"pause {name!r}: {reason}" if reason else f"pause {name!r}"],
    )
    return row


def delete_pause(*, db: Session, name: str, actor: str, now: datetime) -> None:
    row = db.get(Pause, name)
    if row is None:
        raise NotFound(f"no pause named {name!r}")
    audit(
        db=db,
        now=now,
        event="unpaused",
        site_id=row.site_id,
        actor=actor,
        reasons=[f"pause {name!r} removed"],
    )
    db.delete(row)
    db.flush()


def active_pauses(*, db: Session, now: datetime) -> list[Pause]:
    query = select(Pause).where(or_(Pause.expires_at.is_(None), Pause.expires_at > now))
    return list(db.scalars(query.order_by(Pause.created_at, Pause.name)))


# Holds, drains, release requests -------------------------------------------------------------
def device_states(
    *,
    db: Session,
    held: bool | None = None,
    draining: bool | None = None,
    cordoned: bool | None = None,
) -> list[DeviceActionState]:
    query = select(DeviceActionState)
    if held is not None:
        query = query.where(DeviceActionState.held.is_(held))
    if draining is not None:
        query = query.where(DeviceActionState.draining.is_(draining))
    if cordoned is not None:
        query = query.where(DeviceActionState.cordoned.is_(cordoned))
    return list(db.scalars(query.order_by(DeviceActionState.device_id)))


def release_requests(*, db: Session, device_id: str | None = None) -> list[DeviceActionState]:
    """Releases a gateway agent has not picked up yet (the agent then unholds locally, as
    ``keadm ctl unhold-upgrade`` does)."""
    query = select(DeviceActionState).where(
        DeviceActionState.release_requested_at.is_not(None),
        or_(
            DeviceActionState.release_picked_up_at.is_(None),
            DeviceActionState.release_picked_up_at < DeviceActionState.release_requested_at,
        ),
    )
    if device_id is not None:
        query = query.where(DeviceActionState.device_id == device_id)
    return list(db.scalars(query))


def ack_release(*, db: Session, device_id: str, now: datetime, actor: str) -> DeviceActionState:
    row = db.get(DeviceActionState, device_id)
    if row is None or row.release_requested_at is None:
        raise NotFound(f"no release request for {device_id}")
    row.release_picked_up_at = now
    audit(
        db=db,
        now=now,
        event="release_picked_up",
        device_id=device_id,
        site_id=row.site_id,
        actor=actor,
        reasons=["gateway agent released the hold locally"],
    )
    return row


# API-created policies ------------------------------------------------------------------------
def store_policy(*, db: Session, policy: Policy, actor: str, now: datetime) -> StoredPolicy:
    if db.get(StoredPolicy, policy.name) is not None:
        raise RecordError(f"a policy named {policy.name!r} exists")
    row = StoredPolicy(
        name=policy.name, spec=policy.model_dump(mode="json"), created_by=actor, created_at=now
    )
    db.add(row)
    db.flush()
    audit(db=db, now=now, event="policy_created", actor=actor, reasons=[policy.name])
    return row


def delete_policy(*, db: Session, name: str, actor: str, now: datetime) -> None:
    row = db.get(StoredPolicy, name)
    if row is None:
        raise NotFound(f"no API-created policy named {name!r}")
    db.delete(row)
    audit(db=db, now=now, event="policy_deleted", actor=actor, reasons=[name])
    db.flush()
