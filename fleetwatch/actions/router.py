"""REST endpoints of actions: decisions, approvals, the audit log, pauses, holds and drains.

Reading needs scope ``read``; approving, rejecting, pausing and managing policies need
``actions``. The gateway agent's endpoints (its hold state, acknowledging a release) need
``ingest``, the scope agents hold. A token bound to a site sees and changes that site only.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from fleetwatch.actions import records
from fleetwatch.actions.config import Policy, default_policies
from fleetwatch.actions.models import Action, StoredPolicy
from fleetwatch.actions.policy import load_policy_file
from fleetwatch.actions.schemas import (
    ActionOut,
    ActionPage,
    AuditOut,
    AuditPage,
    DecisionIn,
    DeviceStateOut,
    PauseIn,
    PauseOut,
    PolicyOut,
)
from fleetwatch.api.deps import Principal, get_db, get_settings, require_scope
from fleetwatch.api.errors import ApiError, error_responses
from fleetwatch.db import utcnow
from fleetwatch.plugins.actuator import ActionKind
from fleetwatch.settings import Settings

router = APIRouter(tags=["actions"])
_NAME = Path(..., pattern=r"^[A-Za-z0-9_.-]{1,100}$")
_ID = r"^[^\n\r\x00/]{1,200}$"
_OFFSET = Query(0, ge=0, le=10_000_000)
_ACTION_ID = Path(..., ge=1, le=2**31 - 1)
_DEVICE_ID = Path(..., pattern=_ID)
ActionState = Literal[
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
]


def _site(principal: Principal, site: str | None) -> str | None:
    if principal.site is not None:
        if site not in (None, principal.site):
            raise ApiError(403, f"token is bound to site {principal.site!r}", code="forbidden")
        return principal.site
    return site


def _own(principal: Principal, row: Action | None, action_id: int) -> Action:
    if row is None or (principal.site is not None and row.site_id != principal.site):
        raise ApiError(404, f"no action {action_id}")
    return row


@router.get("/actions", response_model=ActionPage)
def list_actions(
    state: list[ActionState] | None = Query(None, description="filter by state"),
    site: str | None = Query(None, pattern=_ID),
    device: str | None = Query(None, pattern=_ID),
    kind: ActionKind | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = _OFFSET,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> ActionPage:
    """Proposed, pending, applied and refused actions, newest first."""
    rows, total = records.list_actions(
        db=db,
        states=state,
        site=_site(principal, site),
        device=device,
        kind=kind,
        limit=limit,
        offset=offset,
    )
    items = [ActionOut.model_validate(r) for r in rows]
    return ActionPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/actions/audit", response_model=AuditPage)
def audit_log(
    site: str | None = Query(None, pattern=_ID),
    device: str | None = Query(None, pattern=_ID),
    event: str | None = Query(None, pattern=r"^[a-z_]{1,32}$", examples=["refused"]),
    action_id: int | None = Query(None, ge=1, le=2**31 - 1),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = _OFFSET,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> AuditPage:
    """Every decision with its reasons: proposals, refusals, approvals, applications, storms."""
    rows, total = records.list_audit(
        db=db,
        site=_site(principal, site),
        device=device,
        event=event,
        action_id=action_id,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


def _decide(
    db: Session, principal: Principal, action_id: int, approve: bool, body: DecisionIn
) -> ActionOut:
    _own(principal, db.get(Action, action_id), action_id)
    try:
        row = records.decide_approval(
            db=db,
            action_id=action_id,
            approve=approve,
            actor=principal.name,
            now=utcnow(),
            comment=body.comment,
        )
    except records.RecordError as exc:
        raise ApiError(409, str(exc)) from None
    return ActionOut.model_validate(row)


@router.post(
    "/actions/{action_id}/approve", response_model=ActionOut, responses=error_responses(404, 409)
)
def approve(
    action_id: int = _ACTION_ID,
    body: DecisionIn = DecisionIn(),
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("actions")),
) -> ActionOut:
    """Approve a pending action; the next pass applies it, through the gate again."""
    return _decide(db, principal, action_id, True, body)


@router.post(
    "/actions/{action_id}/reject", response_model=ActionOut, responses=error_responses(404, 409)
)
def reject(
    action_id: int = _ACTION_ID,
    body: DecisionIn = DecisionIn(),
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("actions")),
) -> ActionOut:
    return _decide(db, principal, action_id, False, body)


# Pauses --------------------------------------------------------------------------------------
@router.get("/actions/pauses", response_model=list[PauseOut])
def list_pauses(
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[PauseOut]:
    """Active pause requests (global ones have no site)."""
    rows = records.active_pauses(db=db, now=utcnow())
    if principal.site is not None:
        rows = [p for p in rows if p.site_id in (None, principal.site)]
    return [PauseOut.model_validate(p) for p in rows]


@router.post(
    "/actions/pauses", response_model=PauseOut, status_code=201, responses=error_responses(409)
)
def create_pause(
    body: PauseIn,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("actions")),
) -> PauseOut:
    """Stop automatic actions at a site (or everywhere) until the pause is deleted or expires."""
    if principal.site is not None and body.site_id != principal.site:
        raise ApiError(403, f"token is bound to site {principal.site!r}", code="forbidden")
    try:
        row = records.create_pause(
            db=db,
            name=body.name,
            site_id=body.site_id,
            reason=body.reason,
            actor=principal.name,
            now=utcnow(),
            expires_at=body.expires_at,
        )
    except records.RecordError as exc:
        raise ApiError(409, str(exc)) from None
    return PauseOut.model_validate(row)


@router.delete("/actions/pauses/{name}", status_code=204, responses=error_responses(404))
def delete_pause(
    name: str = _NAME,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("actions")),
) -> Response:
    try:
        records.delete_pause(db=db, name=name, actor=principal.name, now=utcnow())
    except records.NotFound as exc:
        raise ApiError(404, str(exc)) from None
    return Response(status_code=204)


# Holds and drains ----------------------------------------------------------------------------
@router.get("/actions/holds", response_model=list[DeviceStateOut])
def active_holds(
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[DeviceStateOut]:
    """Devices whose upgrades fleetwatch holds, with when each hold expires."""
    rows = records.device_states(db=db, held=True)
    return [DeviceStateOut.model_validate(r) for r in rows if _visible(principal, r.site_id)]


@router.get("/actions/drains", response_model=list[DeviceStateOut])
def active_drains(
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> list[DeviceStateOut]:
    """Devices fleetwatch has cordoned or is draining."""
    rows = records.device_states(db=db, cordoned=True)
    return [DeviceStateOut.model_validate(r) for r in rows if _visible(principal, r.site_id)]


def _visible(principal: Principal, site_id: str) -> bool:
    return principal.site is None or principal.site == site_id


class AgentHold(BaseModel):
    device_id: str
    held: bool
    release_requested: bool


@router.get("/actions/agent/{device_id}/hold", response_model=AgentHold)
def agent_hold(
    device_id: str = _DEVICE_ID,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("ingest")),
) -> AgentHold:
    """For the gateway agent: defer updates while ``held``; unhold locally on a release."""
    pending = records.release_requests(db=db, device_id=device_id)
    states = [s for s in records.device_states(db=db, held=True) if s.device_id == device_id]
    return AgentHold(device_id=device_id, held=bool(states), release_requested=bool(pending))


@router.post(
    "/actions/agent/{device_id}/release-ack", status_code=204, responses=error_responses(404)
)
def agent_release_ack(
    device_id: str = _DEVICE_ID,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("ingest")),
) -> Response:
    """The agent released the hold locally (``keadm ctl unhold-upgrade``)."""
    try:
        records.ack_release(db=db, device_id=device_id, now=utcnow(), actor=principal.name)
    except records.NotFound as exc:
        raise ApiError(404, str(exc)) from None
    return Response(status_code=204)


# Policies ------------------------------------------------------------------------------------
@router.get("/actions/policies", response_model=list[PolicyOut])
def list_policies(
    db: Session = Depends(get_db, scope="function"),
    settings: Settings = Depends(get_settings),
    principal: Principal = Depends(require_scope("read")),
) -> list[PolicyOut]:
    """Every policy in force and where it comes from."""
    found: list[tuple[Policy, str]] = [(p, "settings") for p in settings.actions.policies]
    if settings.actions.policies_file is not None:
        found += [(p, "file") for p in load_policy_file(settings.actions.policies_file)]
    found += [(Policy.model_validate(r.spec), "api") for r in db.query(StoredPolicy).all()]
    if not found:
        found = [(p, "built-in") for p in default_policies()]
    return [
        PolicyOut(**p.model_dump(mode="json", exclude_none=False) | {"source": src})
        for p, src in found
    ]


@router.post(
    "/actions/policies", response_model=PolicyOut, status_code=201, responses=error_responses(409)
)
def create_policy(
    body: Policy,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("actions")),
) -> PolicyOut:
    try:
        records.store_policy(db=db, policy=body, actor=principal.name, now=utcnow())
    except records.RecordError as exc:
        raise ApiError(409, str(exc)) from None
    return PolicyOut(**body.model_dump(mode="json") | {"source": "api"})


@router.delete("/actions/policies/{name}", status_code=204, responses=error_responses(404))
def delete_policy(
    name: str = _NAME,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("actions")),
) -> Response:
    try:
        records.delete_policy(db=db, name=name, actor=principal.name, now=utcnow())
    except records.NotFound as exc:
        raise ApiError(404, str(exc)) from None
    return Response(status_code=204)


# Declared last: /actions/{action_id} must not shadow /actions/pauses and the others.
@router.get("/actions/{action_id}", response_model=ActionOut, responses=error_responses(404))
def get_action(
    action_id: int = _ACTION_ID,
    db: Session = Depends(get_db, scope="function"),
    principal: Principal = Depends(require_scope("read")),
) -> ActionOut:
    return ActionOut.model_validate(_own(principal, db.get(Action, action_id), action_id))
