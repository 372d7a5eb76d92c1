"""Apply allowed actions through the actuators, exactly once, and keep the device state true.

``apply_action`` claims the row with a conditional update (``approved`` → ``applying``): of two
workers handed the same action (a redelivered Celery task), one claims it and the other finds
nothing to do. Actuators are idempotent as well, so a crash between apply and commit is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleetwatch.actions import alerting_adapter
from fleetwatch.actions.config import ActionsSettings
from fleetwatch.actions.models import Action, DeviceActionState, SiteActionState
from fleetwatch.actions.records import audit
from fleetwatch.fleet.models import Device
from fleetwatch.plugins.actuator import REQUEST_TYPES, ActionRequest, Actuator, Outcome, Plan

log = logging.getLogger(__name__)
_RANK = {"failed": 4, "unsupported": 3, "blocked": 2, "in_progress": 1, "done": 0}
_STATE = {
    "done": "applied",
    "in_progress": "in_progress",
    "blocked": "in_progress",
    "failed": "failed",
    "unsupported": "failed",
}


def request_for(db: Session, action: Action) -> ActionRequest:
    """The typed request of an action row; device → node name and Greengrass thing name."""
    device = db.get(Device, action.device_id)
    node = device.node_name if device is not None else None
    runtime = (device.runtime or "") if device is not None else ""
    thing = action.device_id if runtime.startswith("greengrass") else None
    cls = REQUEST_TYPES[action.kind]  # type: ignore[index]
    return cls(
        idempotency_key=action.idempotency_key,
        device_id=action.device_id,
        site_id=action.site_id,
        node_name=node,
        thing_name=thing,
        reason="; ".join(action.reasons or []),
    )


def plan_for(request: ActionRequest, actuators: Sequence[Actuator]) -> Plan:
    """The combined plan of every actuator that handles the request (reads only)."""
    handlers = [a for a in actuators if a.handles(request)]
    if not handlers:
        return Plan(request, feasible=False, notes=("no configured actuator handles this device",))
    calls, notes, feasible = [], [], True
    for actuator in handlers:
        try:
            plan = actuator.plan(request)
        except Exception as exc:  # a plan is advice: an unreachable API must not stop the pass
            notes.append(f"{actuator.name}: cannot plan: {type(exc).__name__}: {exc}")
            feasible = False
            continue
        calls += list(plan.calls)
        notes += [f"{actuator.name}: {n}" for n in plan.notes]
        feasible = feasible and plan.feasible
    return Plan(request, tuple(calls), feasible, tuple(notes))


def _run(request: ActionRequest, actuators: Sequence[Actuator]) -> Outcome:
    handlers = [a for a in actuators if a.handles(request)]
    if not handlers:
        return Outcome("unsupported", "no configured actuator handles this device")
    outcomes: list[tuple[str, Outcome]] = []
    for actuator in handlers:
        try:
            outcomes.append((actuator.name, actuator.apply(request)))
        except Exception as exc:
            log.exception("actuator %s failed on %s", actuator.name, request.kind)
            outcomes.append((actuator.name, Outcome("failed", f"{type(exc).__name__}: {exc}")))
    worst = max(outcomes, key=lambda item: _RANK[item[1].status])[1]
    retry = [o.retry_after_s for _, o in outcomes if o.retry_after_s is not None]
    return Outcome(
        status=worst.status,
        detail="; ".join(f"{name}: {o.detail}" for name, o in outcomes if o.detail),
        writes=sum(o.writes for _, o in outcomes),
        retry_after_s=min(retry) if retry else None,
        data={name: o.data for name, o in outcomes},
    )


def _device_state(db: Session, action: Action) -> DeviceActionState:
    row = db.get(DeviceActionState, action.device_id)
    if row is None:
        row = DeviceActionState(device_id=action.device_id, site_id=action.site_id)
        db.add(row)
    return row


def _record_effect(
    db: Session, action: Action, status: str, settings: ActionsSettings, now: datetime
) -> None:
    """Keep what fleetwatch holds on the device in step with what the actuator did."""
    if status not in ("done", "in_progress", "blocked"):
        return
    st = _device_state(db, action)
    kind, done = action.kind, status == "done"
    if kind in ("cordon", "drain"):
        st.cordoned, st.cordoned_at = True, st.cordoned_at or now
        st.healthy_since = None
    if kind == "drain":
        if st.drain_started_at is None or not st.draining:
            st.drain_started_at = now
        st.draining = not done
        st.drained_at = now if done else None
    elif kind == "uncordon" and done:
        st.cordoned = st.draining = False
        st.cordoned_at = None
    elif kind == "hold_upgrade" and done:
        st.held, st.held_at = True, now
        st.hold_expires_at = now + timedelta(seconds=settings.max_hold_s)
        st.healthy_since = None
    elif kind == "release_hold" and done:
        st.held = False
        st.release_requested_at = now  # for a gateway agent that unholds locally
        if action.policy != "max-hold-expiry":
            st.hold_expires_at = None


def apply_action(
    *,
    db: Session,
    action_id: int,
    settings: ActionsSettings,
    now: datetime,
    actuators: Sequence[Actuator],
    claim_from: str = "approved",
) -> str:
    """Apply an allowed action once; returns the row's state afterwards (unchanged if another
    worker already claimed it, or it is not in ``claim_from``)."""
    claimed = db.execute(
        update(Action)
        .where(Action.id == action_id, Action.state == claim_from)
        .values(state="applying", updated_at=now)
    )
    row = db.get(Action, action_id)
    if row is None:
        return "missing"
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return row.state
    db.refresh(row)
    outcome = _run(request_for(db, row), actuators)
    first_start = row.started_at is None
    row.started_at = row.started_at or now
    row.outcome = outcome.to_dict()
    row.state = _STATE[outcome.status]
    row.updated_at = now
    _record_effect(db, row, outcome.status, settings, now)
    if row.kind == "drain" and first_start and row.state != "failed":
        site = db.get(SiteActionState, row.site_id) or SiteActionState(site_id=row.site_id)
        site.last_drain_at = now
        db.add(site)
    db.flush()
    if claim_from == "approved" or row.state != "in_progress":
        audit(
            db=db,
            now=now,
            event=row.state,
            action=row,
            reasons=[outcome.detail or row.state],
            detail={"writes": outcome.writes},
        )
        _announce(db, row, outcome, now)
    return row.state


def _announce(db: Session, row: Action, outcome: Outcome, now: datetime) -> None:
    verb = {"applied": "did", "in_progress": "started", "failed": "failed to"}[row.state]
    alerting_adapter.announce(
        db=db,
        now=now,
        title=f"fleetwatch {verb} {row.kind} {row.device_id}",
        labels={
            "alertname": "FleetwatchAction",
            "device": row.device_id,
            "site": row.site_id,
            "action": row.kind,
            "policy": row.policy,
        },
        severity="warning" if row.state == "failed" else "info",
        description="; ".join(row.reasons or [])
        + (f" — {outcome.detail}" if outcome.detail else ""),
    )


def progress_drains(
    *, db: Session, settings: ActionsSettings, now: datetime, actuators: Sequence[Actuator]
) -> dict[str, int]:
    """Retry drains waiting on PodDisruptionBudgets; escalate (never force) past the timeout."""
    counts = {"applied": 0, "in_progress": 0, "escalated": 0, "failed": 0}
    ids = db.scalars(
        # A drain started in this very pass has just been tried: next pass retries it.
        select(Action.id).where(
            Action.kind == "drain", Action.state == "in_progress", Action.started_at < now
        )
    ).all()
    for action_id in ids:
        state = apply_action(
            db=db,
            action_id=action_id,
            settings=settings,
            now=now,
            actuators=actuators,
            claim_from="in_progress",
        )
        row = db.get(Action, action_id)
        if row is None or state != "in_progress":
            counts[state] = counts.get(state, 0) + 1
            continue
        counts["in_progress"] += 1
        started = row.started_at or now
        if row.escalated_at is None and now - started >= timedelta(
            seconds=settings.drain_timeout_s
        ):
            escalate_drain(db=db, row=row, now=now)
            counts["escalated"] += 1
    return counts


def escalate_drain(*, db: Session, row: Action, now: datetime) -> None:
    """Tell a person a drain is stuck, with the pods and budgets that block it."""
    row.escalated_at = now
    blocked = _blocked_pods(row.outcome or {})
    since = row.started_at.isoformat() if row.started_at else "?"
    reason = (
        f"drain of {row.device_id} blocked since {since}"
        f"; waiting on: {', '.join(blocked) or 'unknown'}; not forced"
    )
    audit(
        db=db,
        now=now,
        event="escalated",
        action=row,
        reasons=[reason],
        detail={"outcome": row.outcome or {}},
    )
    alerting_adapter.announce(
        db=db,
        now=now,
        title=f"fleetwatch drain of {row.device_id} is blocked past its timeout",
        labels={
            "alertname": "FleetwatchDrainBlocked",
            "device": row.device_id,
            "site": row.site_id,
            "action": "drain",
        },
        severity="critical",
        description=reason + ". Resolve the PodDisruptionBudget or drain by hand.",
    )


def _blocked_pods(outcome: dict[str, object]) -> list[str]:
    data = outcome.get("data")
    found: list[str] = []
    if isinstance(data, dict):
        for per_actuator in data.values():
            if isinstance(per_actuator, dict):
                found += [str(p) for p in per_actuator.get("blocked", [])]
    return found
