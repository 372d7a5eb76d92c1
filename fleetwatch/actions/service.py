"""Actions: evaluate policies, pass every proposal through the gate, apply, audit, announce.

One pass (:func:`evaluate`) is: release holds at their maximum → read the fleet (health,
forecasts, firing alerts, what fleetwatch holds) → proposals from the policies → storm brake per
site → the gate judges each proposal (sharing one budget) → each decision is stored under its
idempotency key and audited → in ``act`` mode allowed and approved actions are applied → drains
in progress are advanced, and a drain blocked past its timeout is escalated (never forced).

A redelivered task re-runs the pass: every decision it would make already exists under its key,
and applying claims the row (``approved`` → ``applying``) so only one worker ever applies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleetwatch.actions import alerting_adapter, gate
from fleetwatch.actions import policy as pol
from fleetwatch.actions.applying import apply_action, plan_for, progress_drains, request_for
from fleetwatch.actions.config import ActionsSettings, Policy, default_policies
from fleetwatch.actions.models import Action, DeviceActionState, SiteActionState, StoredPolicy
from fleetwatch.actions.records import active_pauses, audit
from fleetwatch.actions.views import device_views
from fleetwatch.fleet.models import Site
from fleetwatch.plugins.actuator import Actuator, Plan

EXPIRY_POLICY = "max-hold-expiry"


@dataclass(slots=True)
class EvaluationSummary:
    """Counts of one pass, and the ids of the actions it decided."""

    proposed: int = 0
    duplicates: int = 0
    planned: int = 0
    pending: int = 0
    applied: int = 0
    in_progress: int = 0
    refused: int = 0
    failed: int = 0
    escalated: int = 0
    storms: list[str] = field(default_factory=list)
    action_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def count(self, state: str) -> None:
        if state in ("applied", "in_progress", "failed", "refused", "escalated", "planned"):
            setattr(self, state, getattr(self, state) + 1)


def load_policies(*, db: Session, settings: ActionsSettings) -> list[Policy]:
    """Settings' inline policies, the policy file, and API-created ones; built-ins if none."""
    found = list(settings.policies)
    if settings.policies_file is not None:
        found += pol.load_policy_file(settings.policies_file)
    found += [Policy.model_validate(row.spec) for row in db.scalars(select(StoredPolicy))]
    return found or default_policies()


def gate_context(
    *, db: Session, settings: ActionsSettings, now: datetime, views: Sequence[pol.DeviceView]
) -> gate.GateContext:
    """The gate's snapshot: site sizes and budgets, disrupted devices, storms, pauses."""
    clusters = {s.id: s.cluster for s in db.scalars(select(Site))}
    sites: dict[str, gate.SiteGate] = {}
    for view in views:
        site = sites.get(view.site_id)
        if site is None:
            budget = settings.budget_for(view.site_id, clusters.get(view.site_id))
            site = sites[view.site_id] = gate.SiteGate(view.site_id, 0, budget)
        site.total += 1
        if view.cordoned or view.draining:
            site.disrupted.add(view.device_id)
        if view.draining:
            site.draining.add(view.device_id)
    for row in db.scalars(select(SiteActionState)):
        if row.site_id in sites:
            site = sites[row.site_id]
            site.last_drain_at = row.last_drain_at
            site.storm_since = row.storm_since
            site.storm_cleared_at = row.storm_cleared_at
    if settings.mode == "dry-run":
        _count_planned(db, settings, now, sites)
    global_pauses: list[str] = []
    for pause in active_pauses(db=db, now=now):
        if pause.site_id is None:
            global_pauses.append(pause.name)
        elif pause.site_id in sites:
            sites[pause.site_id].pauses.append(pause.name)
    devices = {
        row.device_id: gate.DeviceGate(
            site_id=row.site_id,
            cordoned=row.cordoned,
            draining=row.draining,
            held=row.held,
            hold_expires_at=row.hold_expires_at,
            healthy_since=row.healthy_since,
        )
        for row in db.scalars(select(DeviceActionState))
    }
    return gate.GateContext(now, settings, sites, devices, global_pauses)


def _count_planned(
    db: Session, settings: ActionsSettings, now: datetime, sites: dict[str, gate.SiteGate]
) -> None:
    """In dry-run nothing changes on the devices, so recent planned disruptions stand in for
    them: the plan then shows what the budget would really allow, pass after pass."""
    since = now - timedelta(seconds=settings.decision_window_s)
    rows = db.scalars(
        select(Action).where(
            Action.state == "planned",
            Action.kind.in_(sorted(pol.DISRUPTIVE)),
            Action.created_at > since,
        )
    )
    for row in rows:
        site = sites.get(row.site_id)
        if site is None:
            continue
        site.disrupted.add(row.device_id)
        if row.kind == "drain":
            site.draining.add(row.device_id)
            if site.last_drain_at is None or site.last_drain_at < row.created_at:
                site.last_drain_at = row.created_at


def _site_state(db: Session, site_id: str) -> SiteActionState:
    row = db.get(SiteActionState, site_id)
    if row is None:
        row = SiteActionState(site_id=site_id)
        db.add(row)
    return row


def apply_storm_brakes(
    *, db: Session, ctx: gate.GateContext, proposals: Sequence[pol.Proposal], now: datetime
) -> list[str]:
    """Start or end the storm brake per site; page a person when a storm starts."""
    flagged = pol.flagged_devices(list(proposals))
    storming: list[str] = []
    for site in ctx.sites.values():
        mine = {p.device_id for p in proposals if p.site_id == site.site_id} & flagged
        check = gate.check_storm(site, mine, ctx.settings, now)
        if check.started:
            row = _site_state(db, site.site_id)
            row.storm_since = site.storm_since = now
            reason = (
                f"{check.flagged} of {check.total} devices flagged at once "
                f"(storm_ratio {ctx.settings.storm_ratio:.0%}): automatic actions stopped"
            )
            audit(db=db, now=now, event="storm", site_id=site.site_id, reasons=[reason])
            alerting_adapter.announce(
                db=db,
                now=now,
                title=f"fleetwatch stopped automatic actions at site {site.site_id}: storm",
                labels={"alertname": "FleetwatchActionStorm", "site": site.site_id},
                severity="critical",
                description=reason + ". A person should look before anything is drained.",
            )
        elif check.ended:
            row = _site_state(db, site.site_id)
            row.storm_since = site.storm_since = None
            row.storm_cleared_at = site.storm_cleared_at = now
            reasons = [f"{check.flagged} of {check.total} flagged; cooldown begins"]
            audit(db=db, now=now, event="storm_ended", site_id=site.site_id, reasons=reasons)
        if site.storm_since is not None:
            storming.append(site.site_id)
    db.flush()
    return storming


def _state_for(decision: gate.Decision, mode: str) -> str:
    if decision.verdict == "refuse":
        return "refused"
    if decision.verdict == "approval":
        return "pending"
    return "planned" if mode == "dry-run" else "approved"


def record_decision(
    *,
    db: Session,
    proposal: pol.Proposal,
    decision: gate.Decision,
    key: str,
    mode: str,
    now: datetime,
    plan: Plan | None = None,
) -> Action | None:
    """Store and audit the decision under its key; None when that key was decided already."""
    row = Action(
        idempotency_key=key,
        policy=proposal.policy,
        kind=proposal.kind,
        device_id=proposal.device_id,
        site_id=proposal.site_id,
        state=_state_for(decision, mode),
        mode=mode,
        reasons=list(proposal.reasons),
        gate_reasons=list(decision.reasons),
        trigger=dict(proposal.trigger),
        plan=plan.to_dict() if plan is not None else None,
        lead_time_s=proposal.lead_time_s,
        created_at=now,
        updated_at=now,
    )
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        return None  # a redelivered task or a concurrent worker decided this already
    events = {"planned": "planned", "pending": "pending_approval", "approved": "allowed"}
    audit(
        db=db,
        now=now,
        event=events.get(row.state, row.state),
        action=row,
        reasons=list(proposal.reasons) + list(decision.reasons),
    )
    return row


def _key_taken(db: Session, key: str) -> bool:
    return db.scalar(select(Action.id).where(Action.idempotency_key == key)) is not None


def decide_one(
    *,
    db: Session,
    ctx: gate.GateContext,
    proposal: pol.Proposal,
    actuators: Sequence[Actuator],
    summary: EvaluationSummary,
    hold_expiry: bool = False,
) -> Action | None:
    """Judge, record, and (in act mode) apply one proposal; None for a duplicate."""
    settings, now = ctx.settings, ctx.now
    key = pol.idempotency_key(
        policy=proposal.policy,
        device_id=proposal.device_id,
        kind=proposal.kind,
        now=now,
        window_s=settings.decision_window_s,
        mode=settings.mode,
    )
    if _key_taken(db, key):
        summary.duplicates += 1
        return None
    decision = gate.decide(ctx, proposal, hold_expiry=hold_expiry)
    if decision.verdict == "refuse":
        key = pol.refusal_key(key, decision.reasons)
        if _key_taken(db, key):  # the same refusal as last pass: audited once is enough
            summary.duplicates += 1
            return None
    plan = None
    if decision.allowed and settings.mode == "dry-run":
        plan = _dry_run_plan(db, proposal, key, actuators)
    row = record_decision(
        db=db,
        proposal=proposal,
        decision=decision,
        key=key,
        mode=settings.mode,
        now=now,
        plan=plan,
    )
    if row is None:
        summary.duplicates += 1
        return None
    summary.action_ids.append(row.id)
    if decision.allowed:
        ctx.account(proposal)
    if row.state == "pending":
        summary.pending += 1
        _announce_pending(db, row, now)
    elif row.state == "approved":
        summary.count(
            apply_action(db=db, action_id=row.id, settings=settings, now=now, actuators=actuators)
        )
    else:
        summary.count(row.state)
    return row


def _dry_run_plan(
    db: Session, proposal: pol.Proposal, key: str, actuators: Sequence[Actuator]
) -> Plan:
    probe = Action(
        idempotency_key=key,
        policy=proposal.policy,
        kind=proposal.kind,
        device_id=proposal.device_id,
        site_id=proposal.site_id,
        reasons=list(proposal.reasons),
    )
    return plan_for(request_for(db, probe), actuators)


def _announce_pending(db: Session, row: Action, now: datetime) -> None:
    alerting_adapter.announce(
        db=db,
        now=now,
        title=f"fleetwatch asks approval to {row.kind} {row.device_id}",
        labels={
            "alertname": "FleetwatchActionApproval",
            "device": row.device_id,
            "site": row.site_id,
            "action": row.kind,
        },
        severity="warning",
        description="; ".join(row.reasons) + f" — approve or reject action {row.id}",
    )


def apply_approved(
    *,
    db: Session,
    ctx: gate.GateContext,
    actuators: Sequence[Actuator],
    summary: EvaluationSummary,
) -> None:
    """Actions a person approved pass the gate again (the site may be in a storm by now)."""
    rows = db.scalars(
        select(Action).where(Action.state == "approved", Action.mode == "act").order_by(Action.id)
    ).all()
    for row in rows:
        proposal = pol.Proposal(
            policy=row.policy,
            kind=row.kind,  # type: ignore[arg-type]
            device_id=row.device_id,
            site_id=row.site_id,
            reasons=tuple(row.reasons),
        )
        decision = gate.decide(ctx, proposal, approved=True)
        if not decision.allowed:
            if list(decision.reasons) != list(row.gate_reasons):
                row.gate_reasons = list(decision.reasons)
                audit(
                    db=db, now=ctx.now, event="deferred", action=row, reasons=list(decision.reasons)
                )
            continue
        ctx.account(proposal)
        summary.count(
            apply_action(
                db=db, action_id=row.id, settings=ctx.settings, now=ctx.now, actuators=actuators
            )
        )


def track_recovery(*, db: Session, views: Sequence[pol.DeviceView], now: datetime) -> None:
    """Remember since when each device fleetwatch holds something on has been healthy."""
    by_id = {v.device_id: v for v in views}
    for row in db.scalars(select(DeviceActionState)):
        view = by_id.get(row.device_id)
        if view is None:
            continue
        if pol.is_recovered(view):
            if row.healthy_since is None:
                row.healthy_since = now
            if not row.held:
                row.hold_expires_at = None  # recovered: a new hold may be placed later
        else:
            row.healthy_since = None
    db.flush()


def expire_holds(
    *,
    db: Session,
    settings: ActionsSettings,
    now: datetime,
    actuators: Sequence[Actuator],
    summary: EvaluationSummary,
) -> None:
    """Release every hold that reached ``max_hold_s``, whatever else is going on."""
    rows = db.scalars(
        select(DeviceActionState).where(
            DeviceActionState.held.is_(True), DeviceActionState.hold_expires_at <= now
        )
    ).all()
    if not rows:
        return
    ctx = gate_context(db=db, settings=settings, now=now, views=[])
    for row in rows:
        proposal = pol.Proposal(
            policy=EXPIRY_POLICY,
            kind="release_hold",
            device_id=row.device_id,
            site_id=row.site_id,
            reasons=(f"hold placed at {row.held_at} reached max_hold_s {settings.max_hold_s:.0f}",),
        )
        decide_one(
            db=db,
            ctx=ctx,
            proposal=proposal,
            actuators=actuators,
            summary=summary,
            hold_expiry=True,
        )


def evaluate(
    *,
    db: Session,
    settings: ActionsSettings,
    now: datetime,
    actuators: Sequence[Actuator] = (),
) -> EvaluationSummary:
    """One pass of policies → gate → decisions (→ applications in ``act`` mode)."""
    summary = EvaluationSummary()
    expire_holds(db=db, settings=settings, now=now, actuators=actuators, summary=summary)
    track_recovery(db=db, views=device_views(db=db, now=now), now=now)
    views = device_views(db=db, now=now)
    proposals = pol.evaluate(load_policies(db=db, settings=settings), views)
    # The most urgent device gets the first slot of the budget.
    proposals.sort(key=lambda p: (-float(p.trigger.get("risk_1h", 0.0)), p.lead_time_s or 1e18))
    ctx = gate_context(db=db, settings=settings, now=now, views=views)
    summary.storms = apply_storm_brakes(db=db, ctx=ctx, proposals=proposals, now=now)
    summary.proposed = len(proposals)
    if settings.mode == "act":
        apply_approved(db=db, ctx=ctx, actuators=actuators, summary=summary)
    for proposal in proposals:
        decide_one(db=db, ctx=ctx, proposal=proposal, actuators=actuators, summary=summary)
    drains = progress_drains(db=db, settings=settings, now=now, actuators=actuators)
    summary.applied += drains["applied"]
    summary.escalated += drains["escalated"]
    summary.failed += drains["failed"]
    return summary


__all__ = [
    "EXPIRY_POLICY",
    "EvaluationSummary",
    "apply_action",
    "apply_approved",
    "apply_storm_brakes",
    "decide_one",
    "evaluate",
    "expire_holds",
    "gate_context",
    "load_policies",
    "record_decision",
    "track_recovery",
]
