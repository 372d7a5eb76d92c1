"""Hints for orchestrators, pure: placement scores per node, capacity and scaling per site, and
the kube-scheduler extender's filter/prioritize answers.

Placement score (0–100, higher is a better home for new work) starts at 100 and loses points for
risk (60 × risk_1h + 30 × risk_24h), for a forecast limit crossing within the horizon (up to 50,
more the sooner, and flagged *thermal* for temperature/thermal metrics), for the analysis' other
top signals (trend, anomaly, peers: 10 × contribution each), for a warning (-10) or critical (-30)
status, and drops to 0 on a node fleetwatch has cordoned or is draining. Below 40 the advice is
``avoid``, from 80 ``prefer``.

The extender follows ``k8s.io/kube-scheduler/extender/v1``: the Go types carry no JSON tags, so
the wire names are the Go field names (``Pod``, ``Nodes``, ``NodeNames``, ``FailedNodes``,
``FailedAndUnresolvableNodes``, ``Error``, ``Host``, ``Score``); scores are 0..MaxExtenderPriority.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fleetwatch.actions.config import Workload
from fleetwatch.actions.policy import DeviceView

MAX_EXTENDER_PRIORITY = 10  # k8s.io/kube-scheduler/extender/v1 MaxExtenderPriority
AVOID_BELOW = 40
PREFER_FROM = 80
FILTER_BELOW = 20  # the filter removes only nodes this bad; prioritize ranks the rest
UNKNOWN_NODE_SCORE = 50  # a node fleetwatch does not know is neither avoided nor preferred
Advice = Literal["avoid", "neutral", "prefer"]
THERMAL_PREFIXES = ("temperature", "thermal")


@dataclass(frozen=True, slots=True)
class PlacementHint:
    node: str
    device_id: str
    site_id: str
    score: int
    advice: Advice
    reasons: tuple[str, ...]


def _forecast_penalty(view: DeviceView, horizon_s: float) -> tuple[float, list[str]]:
    soon = [
        fc
        for fc in view.forecasts
        if fc.will_cross
        and fc.time_to_threshold_s is not None
        and fc.time_to_threshold_s <= horizon_s
    ]
    if not soon:
        return 0.0, []
    first = min(soon, key=lambda fc: fc.time_to_threshold_s or 0.0)
    t = first.time_to_threshold_s or 0.0
    penalty = 10 + 40 * (1 - t / horizon_s)
    thermal = first.metric.startswith(THERMAL_PREFIXES)
    what = "thermal: " if thermal else "trend: "
    sensor = ",".join(f"{k}={v}" for k, v in sorted(first.labels.items()))
    reasons = [
        f"{what}{first.metric}{{{sensor}}} forecast to reach {first.limit_name} "
        f"in {t / 60:.0f} min (-{penalty:.0f})"
    ]
    if thermal and first.limit_value is not None and first.current_value is not None:
        reasons.append(f"thermal headroom {first.limit_value - first.current_value:.1f} °C")
    return penalty, reasons


def placement(view: DeviceView, *, horizon_s: float) -> PlacementHint:
    """The placement score of one device's node, with the reasons that lowered it."""
    node = view.node_name or view.device_id
    if view.cordoned or view.draining:
        what = "draining" if view.draining else "cordoned"
        return PlacementHint(
            node, view.device_id, view.site_id, 0, "avoid", (f"{what} by fleetwatch",)
        )
    score = 100.0
    reasons: list[str] = []
    risk = 60 * view.risk_1h + 30 * view.risk_24h
    if risk >= 1:
        score -= risk
        reasons.append(f"risk_1h {view.risk_1h:.2f}, risk_24h {view.risk_24h:.2f} (-{risk:.0f})")
    penalty, why = _forecast_penalty(view, horizon_s)
    score -= penalty
    reasons += why
    for signal in view.top_signals:
        if signal.get("signal") in ("trend", "anomaly", "peer"):
            cut = 10 * float(signal.get("contribution") or 0.0)
            if cut >= 1:
                score -= cut
                reasons.append(
                    f"{signal['signal']}: {signal.get('detail') or signal.get('metric')}"
                )
    status_cut = {"warning": 10, "critical": 30}.get(view.status, 0)
    if status_cut:
        score -= status_cut
        reasons.append(f"status {view.status} (-{status_cut})")
    final = max(0, min(100, round(score)))
    advice: Advice = (
        "avoid" if final < AVOID_BELOW else "prefer" if final >= PREFER_FROM else "neutral"
    )
    return PlacementHint(
        node, view.device_id, view.site_id, final, advice, tuple(reasons) or ("healthy",)
    )


def placements(views: Iterable[DeviceView], *, horizon_s: float) -> list[PlacementHint]:
    return [placement(v, horizon_s=horizon_s) for v in views if v.node_name or v.device_id]


# Capacity and scaling ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkloadHint:
    name: str
    replicas: int
    per_replica_load: float
    max_replicas_now: int
    max_replicas_forecast: int
    suggested_change: int  # negative: that many replicas will not fit on the healthy nodes


@dataclass(frozen=True, slots=True)
class SiteCapacity:
    """Capacity in node units (one healthy node = 1.0) now and within the horizon."""

    site_id: str
    nodes: int
    capacity_now: float
    capacity_forecast: float
    demand: float
    headroom_now_ratio: float
    headroom_forecast_ratio: float
    workloads: tuple[WorkloadHint, ...] = field(default_factory=tuple)


def _healthy_later(view: DeviceView, hint: PlacementHint, horizon_s: float) -> bool:
    crossing = any(
        fc.will_cross and fc.time_to_threshold_s is not None and fc.time_to_threshold_s <= horizon_s
        for fc in view.forecasts
    )
    return hint.advice != "avoid" and not crossing and view.risk_24h < 0.5


def site_capacity(
    site_id: str,
    views: Sequence[DeviceView],
    workloads: Sequence[Workload],
    *,
    horizon_s: float,
) -> SiteCapacity:
    """Headroom = (usable capacity - declared demand) / nodes, now and at the horizon."""
    hints = [placement(v, horizon_s=horizon_s) for v in views]
    nodes = len(views)
    now = float(sum(1 for h in hints if h.advice != "avoid"))
    later = float(
        sum(1 for v, h in zip(views, hints, strict=True) if _healthy_later(v, h, horizon_s))
    )
    mine = [w for w in workloads if w.site in (None, site_id)]
    demand = sum(w.replicas * w.per_replica_load for w in mine)
    out = []
    for w in mine:
        others = demand - w.replicas * w.per_replica_load
        fits_now = max(0, math.floor((now - others) / w.per_replica_load + 1e-9))
        fits_later = max(0, math.floor((later - others) / w.per_replica_load + 1e-9))
        out.append(
            WorkloadHint(
                w.name,
                w.replicas,
                w.per_replica_load,
                fits_now,
                fits_later,
                min(0, fits_later - w.replicas),
            )
        )
    denom = max(nodes, 1)
    return SiteCapacity(
        site_id,
        nodes,
        now,
        later,
        demand,
        round((now - demand) / denom, 4),
        round((later - demand) / denom, 4),
        tuple(out),
    )


# kube-scheduler extender ---------------------------------------------------------------------
def _candidate_names(args: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]] | None]:
    nodes = args.get("Nodes")
    if isinstance(nodes, dict) and isinstance(nodes.get("items"), list):
        items = nodes["items"]
        return [str((n.get("metadata") or {}).get("name", "")) for n in items], items
    return [str(n) for n in args.get("NodeNames") or []], None


def extender_filter(args: dict[str, Any], hints: dict[str, PlacementHint]) -> dict[str, Any]:
    """``ExtenderFilterResult`` for ``ExtenderArgs``: drop nodes fleetwatch is draining or that
    are about to fail; keep the rest (and every node fleetwatch does not know)."""
    names, items = _candidate_names(args)
    failed: dict[str, str] = {}
    for name in names:
        hint = hints.get(name)
        if hint is not None and hint.score < FILTER_BELOW:
            failed[name] = f"fleetwatch: placement score {hint.score}: {'; '.join(hint.reasons)}"
    result: dict[str, Any] = {
        "Nodes": None,
        "NodeNames": None,
        "FailedNodes": failed,
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }
    if items is not None:
        kept = [n for n, name in zip(items, names, strict=True) if name not in failed]
        nodes = dict(args["Nodes"])
        nodes["items"] = kept
        result["Nodes"] = nodes
    else:
        result["NodeNames"] = [n for n in names if n not in failed]
    return result


def extender_prioritize(
    args: dict[str, Any], hints: dict[str, PlacementHint]
) -> list[dict[str, Any]]:
    """``HostPriorityList``: the placement score scaled to 0..MaxExtenderPriority."""
    names, _ = _candidate_names(args)
    out = []
    for name in names:
        hint = hints.get(name)
        score = hint.score if hint is not None else UNKNOWN_NODE_SCORE
        out.append({"Host": name, "Score": round(score * MAX_EXTENDER_PRIORITY / 100)})
    return out
