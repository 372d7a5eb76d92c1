"""The one safety gate every action passes, reactive or predictive: pure decisions, no I/O.

Inputs are a :class:`GateContext` (a snapshot of sites, devices, pauses and persisted gate memory)
and a proposal; the output is a :class:`Decision` — allow, refuse or wait for approval — with the
reasons, which the service writes to the audit log whatever the verdict. The service calls
:meth:`GateContext.account` after each allowed action, so ten proposals judged in one pass share
one budget (ten flagged nodes with ``max_unhealthy = 1`` yield exactly one drain).

Order of the checks, first refusal wins (the audit keeps all reasons found):
pause → storm brake / cooldown → budget (max_unhealthy, min_healthy) → drain concurrency and
buffer → healthy delay (uncordon, release) → approval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from fleetwatch.actions.config import ActionsSettings, Budget
from fleetwatch.actions.policy import DISRUPTIVE, RESTORATIVE, Proposal

Verdict = Literal["allow", "refuse", "approval"]
ALWAYS_NEEDS_APPROVAL = frozenset({"cancel_rollout"})


def resolve_count(spec: str, total: int, *, round_up: bool) -> int:
    """'3' → 3; '25%' of 10 → 2 (max_unhealthy rounds down) or 3 (min_healthy rounds up)."""
    if spec.endswith("%"):
        exact = total * int(spec[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(spec)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


@dataclass(slots=True)
class DeviceGate:
    """Persisted gate memory of one device."""

    site_id: str
    cordoned: bool = False
    draining: bool = False
    held: bool = False
    hold_expires_at: datetime | None = None
    healthy_since: datetime | None = None


@dataclass(slots=True)
class SiteGate:
    """A site's size, what is disrupted there now, and its storm/drain memory."""

    site_id: str
    total: int
    budget: Budget
    disrupted: set[str] = field(default_factory=set)
    draining: set[str] = field(default_factory=set)
    last_drain_at: datetime | None = None
    storm_since: datetime | None = None
    storm_cleared_at: datetime | None = None
    pauses: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GateContext:
    now: datetime
    settings: ActionsSettings
    sites: dict[str, SiteGate]
    devices: dict[str, DeviceGate]
    global_pauses: list[str] = field(default_factory=list)

    def account(self, proposal: Proposal) -> None:
        """Record an allowed action so the next decision in the same pass sees it."""
        site = self.sites.get(proposal.site_id)
        if site is None or proposal.kind not in DISRUPTIVE:
            return
        site.disrupted.add(proposal.device_id)
        if proposal.kind == "drain":
            site.draining.add(proposal.device_id)
            site.last_drain_at = self.now


@dataclass(frozen=True, slots=True)
class StormCheck:
    active: bool
    started: bool  # it began in this pass: page a person
    ended: bool
    flagged: int
    total: int


def check_storm(
    site: SiteGate, flagged: set[str], settings: ActionsSettings, now: datetime
) -> StormCheck:
    """A storm: more than ``storm_ratio`` of the site flagged or disrupted at once."""
    unhealthy = len(flagged | site.disrupted)
    over = (
        site.total > 0
        and unhealthy >= settings.storm_min_devices
        and unhealthy / site.total > settings.storm_ratio
    )
    was = site.storm_since is not None
    return StormCheck(
        active=over,
        started=over and not was,
        ended=was and not over,
        flagged=unhealthy,
        total=site.total,
    )


def _budget_reasons(site: SiteGate, proposal: Proposal) -> list[str]:
    after = site.disrupted | {proposal.device_id}
    max_unhealthy = resolve_count(site.budget.max_unhealthy, site.total, round_up=False)
    min_healthy = resolve_count(site.budget.min_healthy, site.total, round_up=True)
    reasons = []
    if len(after) > max_unhealthy:
        others = ", ".join(sorted(site.disrupted)) or "none"
        reasons.append(
            f"budget: site {site.site_id} allows {max_unhealthy} disrupted device(s) "
            f"(max_unhealthy {site.budget.max_unhealthy}); already disrupted: {others}"
        )
    if site.total - len(after) < min_healthy:
        reasons.append(
            f"budget: {site.total - len(after)} of {site.total} devices would stay undisrupted, "
            f"min_healthy is {min_healthy}"
        )
    return reasons


def _drain_reasons(site: SiteGate, settings: ActionsSettings, now: datetime) -> list[str]:
    reasons = []
    if len(site.draining) >= site.budget.max_concurrent_drains:
        reasons.append(
            f"drain concurrency: {len(site.draining)} drain(s) in progress at site "
            f"{site.site_id} ({', '.join(sorted(site.draining)) or '-'}); "
            f"max {site.budget.max_concurrent_drains}"
        )
    if site.last_drain_at is not None:
        ready = site.last_drain_at + timedelta(seconds=settings.drain_buffer_s)
        if now < ready:
            reasons.append(
                f"drain buffer: last drain at {site.last_drain_at.isoformat()}, "
                f"next allowed at {ready.isoformat()}"
            )
    return reasons


def _healthy_delay_reasons(
    device: DeviceGate | None, settings: ActionsSettings, now: datetime
) -> list[str]:
    since = device.healthy_since if device is not None else None
    if since is None:
        return ["healthy delay: the device has not been seen healthy yet"]
    healthy_for = (now - since).total_seconds()
    if healthy_for < settings.healthy_delay_s:
        return [
            f"healthy delay: healthy for {healthy_for:.0f} s, "
            f"needs {settings.healthy_delay_s:.0f} s"
        ]
    return []


def decide(
    ctx: GateContext, proposal: Proposal, *, approved: bool = False, hold_expiry: bool = False
) -> Decision:
    """Judge one proposal. ``hold_expiry`` marks the automatic release at ``max_hold_s``, which
    no pause, storm or delay may keep: the maximum hold time is a promise to the operator."""
    settings, now = ctx.settings, ctx.now
    if hold_expiry:
        return Decision("allow", ("hold reached max_hold_s: released automatically",))
    site = ctx.sites.get(proposal.site_id)
    if site is None:
        return Decision("refuse", (f"unknown site {proposal.site_id}",))
    reasons: list[str] = [f"paused by {name!r} (global)" for name in ctx.global_pauses]
    reasons += [f"paused by {name!r} (site {site.site_id})" for name in site.pauses]
    if site.storm_since is not None:
        reasons.append(
            f"storm brake: site {site.site_id} in a storm since {site.storm_since.isoformat()}"
        )
    elif site.storm_cleared_at is not None:
        calm = site.storm_cleared_at + timedelta(seconds=settings.storm_cooldown_s)
        if now < calm:
            reasons.append(f"storm cooldown until {calm.isoformat()}")
    if proposal.kind in DISRUPTIVE:
        reasons += _budget_reasons(site, proposal)
        if proposal.kind == "drain":
            reasons += _drain_reasons(site, settings, now)
    if proposal.kind in RESTORATIVE:
        reasons += _healthy_delay_reasons(ctx.devices.get(proposal.device_id), settings, now)
    if reasons:
        return Decision("refuse", tuple(reasons))
    needs = proposal.kind in ALWAYS_NEEDS_APPROVAL or proposal.kind in settings.require_approval
    if needs and not approved:
        return Decision("approval", (f"{proposal.kind} requires a person's approval",))
    return Decision("allow", ("approved by a person",) if needs else ("within every limit",))
