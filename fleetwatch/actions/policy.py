"""Policies → proposals: pure functions over a read-only view of the fleet.

A proposal is what a policy *wants*; whether anything happens is the gate's business
(:mod:`fleetwatch.actions.gate`). Nothing here touches the database or an orchestrator.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from fleetwatch.actions.config import Policy, PolicyCondition
from fleetwatch.plugins.actuator import ActionKind

DISRUPTIVE: frozenset[str] = frozenset({"cordon", "drain"})
RESTORATIVE: frozenset[str] = frozenset({"uncordon", "release_hold"})


@dataclass(frozen=True, slots=True)
class ForecastView:
    metric: str
    limit_name: str
    will_cross: bool
    time_to_threshold_s: float | None
    lower_s: float | None = None
    upper_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    current_value: float | None = None
    limit_value: float | None = None


@dataclass(frozen=True, slots=True)
class AlertView:
    name: str
    severity: str
    labels: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class DeviceView:
    """Everything a policy may look at for one device."""

    device_id: str
    site_id: str
    node_name: str | None = None
    runtime: str | None = None
    cluster: str | None = None
    status: str = "ok"
    risk_1h: float = 0.0
    risk_24h: float = 0.0
    top_signals: tuple[dict[str, Any], ...] = ()
    forecasts: tuple[ForecastView, ...] = ()
    alerts: tuple[AlertView, ...] = ()
    # What fleetwatch holds on the device now (from the persisted gate state).
    cordoned: bool = False
    draining: bool = False
    held: bool = False
    hold_expired: bool = False  # released at max_hold_s; not re-held until it recovers

    @property
    def thing_name(self) -> str | None:
        """Greengrass core devices are addressed by their IoT thing name, the device id."""
        return self.device_id if (self.runtime or "").startswith("greengrass") else None


@dataclass(frozen=True, slots=True)
class Proposal:
    policy: str
    kind: ActionKind
    device_id: str
    site_id: str
    reasons: tuple[str, ...]
    lead_time_s: float | None = None  # forecast time to the limit, when a forecast triggered it
    trigger: dict[str, Any] = field(default_factory=dict)


def _soon(cond: PolicyCondition, fc: ForecastView) -> bool:
    if not fc.will_cross or fc.time_to_threshold_s is None or cond.forecast_within_s is None:
        return False
    if cond.forecast_metric and not fnmatchcase(fc.metric, cond.forecast_metric):
        return False
    if cond.forecast_limit and not fnmatchcase(fc.limit_name, cond.forecast_limit):
        return False
    return fc.time_to_threshold_s <= cond.forecast_within_s


def _alert_matches(cond: PolicyCondition, alert: AlertView) -> bool:
    if cond.alert_name is not None and not fnmatchcase(alert.name, cond.alert_name):
        return False
    return not (cond.alert_severity_in and alert.severity not in cond.alert_severity_in)


def is_recovered(device: DeviceView, *, horizon_s: float = 2 * 3600) -> bool:
    """Healthy again: status ok, no firing alert, no forecast crossing within the horizon."""
    if device.status != "ok" or any(a.severity != "info" for a in device.alerts):
        return False
    return not any(
        fc.will_cross and fc.time_to_threshold_s is not None and fc.time_to_threshold_s <= horizon_s
        for fc in device.forecasts
    )


def match(cond: PolicyCondition, device: DeviceView) -> tuple[list[str], float | None] | None:
    """The reasons the condition holds for the device, with a lead time; None if it does not."""
    reasons: list[str] = []
    lead: float | None = None
    if cond.risk_1h_gte is not None:
        if device.risk_1h < cond.risk_1h_gte:
            return None
        reasons.append(f"risk_1h {device.risk_1h:.2f} >= {cond.risk_1h_gte:.2f}")
    if cond.risk_24h_gte is not None:
        if device.risk_24h < cond.risk_24h_gte:
            return None
        reasons.append(f"risk_24h {device.risk_24h:.2f} >= {cond.risk_24h_gte:.2f}")
    if cond.status_in is not None:
        if device.status not in cond.status_in:
            return None
        reasons.append(f"status {device.status}")
    if cond.forecast_within_s is not None:
        soon = sorted(
            (fc for fc in device.forecasts if _soon(cond, fc)),
            key=lambda fc: fc.time_to_threshold_s or 0.0,
        )
        if not soon:
            return None
        first = soon[0]
        lead = first.time_to_threshold_s
        reasons.append(
            f"{first.metric} forecast to cross {first.limit_name} in {_human(lead)}"
            + (
                f" (interval {_human(first.lower_s)}–{_human(first.upper_s)})"
                if first.lower_s
                else ""
            )
        )
    if cond.alert_name is not None or cond.alert_severity_in is not None:
        firing = [a for a in device.alerts if _alert_matches(cond, a)]
        if not firing:
            return None
        reasons.append(f"alert {firing[0].name} ({firing[0].severity}) firing")
    if cond.recovered:
        if not is_recovered(device):
            return None
        reasons.append("device recovered: status ok, no alert, no crossing forecast")
    if lead is None:
        lead = _lead_from_signals(device)
    return reasons, lead


def _lead_from_signals(device: DeviceView) -> float | None:
    times = [
        fc.time_to_threshold_s
        for fc in device.forecasts
        if fc.will_cross and fc.time_to_threshold_s is not None
    ]
    return min(times) if times else None


def _relevant(policy: Policy, device: DeviceView) -> bool:
    """Skip proposals that would change nothing (cordon a cordoned node, release no hold)."""
    if policy.sites and device.site_id not in policy.sites:
        return False
    kind = policy.action
    if kind == "cordon":
        return not device.cordoned and not device.draining
    if kind == "drain":
        return not device.draining
    if kind == "hold_upgrade":
        return not device.held and not device.hold_expired
    if kind == "release_hold":
        return device.held
    if kind == "uncordon":
        return device.cordoned or device.draining
    return True


def evaluate(policies: list[Policy], devices: list[DeviceView]) -> list[Proposal]:
    """Every (policy, device) pair whose condition holds and whose action would change something.

    One device gets at most one disruptive proposal: a drain supersedes a cordon.
    """
    out: list[Proposal] = []
    for device in devices:
        mine: list[Proposal] = []
        for policy in policies:
            if not policy.enabled or not _relevant(policy, device):
                continue
            found = match(policy.when, device)
            if found is None:
                continue
            reasons, lead = found
            mine.append(
                Proposal(
                    policy=policy.name,
                    kind=policy.action,
                    device_id=device.device_id,
                    site_id=device.site_id,
                    reasons=tuple(reasons),
                    lead_time_s=lead,
                    trigger={
                        "status": device.status,
                        "risk_1h": device.risk_1h,
                        "risk_24h": device.risk_24h,
                    },
                )
            )
        kinds = {p.kind for p in mine}
        seen: set[str] = set()
        for p in mine:
            if (p.kind == "cordon" and "drain" in kinds) or p.kind in seen:
                continue
            seen.add(p.kind)
            out.append(p)
    return out


def flagged_devices(proposals: list[Proposal]) -> set[str]:
    """Devices some policy wants to disrupt: what the storm brake counts."""
    return {p.device_id for p in proposals if p.kind in DISRUPTIVE}


def idempotency_key(
    *, policy: str, device_id: str, kind: str, now: datetime, window_s: float, mode: str
) -> str:
    """One decision per policy+device+action per decision window, whoever computes it.

    The mode is part of the key so that switching from dry-run to act inside a window acts.
    """
    window = int(now.timestamp() // window_s)
    raw = f"{policy}\x1f{device_id}\x1f{kind}\x1f{window}\x1f{mode}"
    return hashlib.sha256(raw.encode()).hexdigest()


def refusal_key(key: str, reasons: tuple[str, ...]) -> str:
    """A refusal is stored under its own key: the same refusal is audited once, and the real key
    stays free so the proposal is judged again next pass (the budget may have freed up).

    "The same" means the same first reason kind (``budget``, ``storm brake``, a named pause):
    details such as who holds the budget change between passes without making it news.
    """
    first = reasons[0].split(":", 1)[0] if reasons else ""
    raw = key + "\x1frefused\x1f" + first
    return hashlib.sha256(raw.encode()).hexdigest()


def load_policy_file(path: Path) -> list[Policy]:
    """``[[policies]]`` tables of a TOML file, validated; raises ValueError naming the problem."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    items = data.get("policies", [])
    if not isinstance(items, list):
        raise ValueError(f"{path}: 'policies' must be an array of tables")
    return [Policy.model_validate(item) for item in items]


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
