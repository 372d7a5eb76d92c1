"""Bulk rule evaluation: each rule kind turns one store read or one set-based query into findings.

A finding is "this label set meets the rule's condition now". Nothing here loops over devices
issuing queries: the metrics store answers ``latest(metric=...)`` for every series at once and
the state DB answers one query per rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from fleetwatch.alerting import rules as r
from fleetwatch.alerting.matchers import fingerprint, matches_all
from fleetwatch.analysis.models import AnomalyEpisode, Forecast
from fleetwatch.fleet.models import Device
from fleetwatch.store.base import MetricsStore

_OPS: dict[str, Callable[[pd.Series, float], pd.Series]] = {
    ">": lambda s, t: s > t,
    ">=": lambda s, t: s >= t,
    "<": lambda s, t: s < t,
    "<=": lambda s, t: s <= t,
    "==": lambda s, t: s == t,
    "!=": lambda s, t: s != t,
}


@dataclass(slots=True)
class Finding:
    fingerprint: str
    rule: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    active_since: datetime | None = None  # when the condition began, if the source knows


@dataclass
class EvalContext:
    db: Session
    store: MetricsStore
    now: datetime
    external_url: str
    _latest: dict[str, pd.DataFrame] = field(default_factory=dict)

    def latest(self, metric: str) -> pd.DataFrame:
        if metric not in self._latest:
            self._latest[metric] = self.store.latest(metric=metric)
        return self._latest[metric]


def humanize(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def make_finding(
    rule: r.RuleBase,
    ctx: EvalContext,
    series_labels: Mapping[str, Any],
    *,
    value: float | None,
    extra: Mapping[str, Any] | None = None,
    active_since: datetime | None = None,
) -> Finding:
    labels = {k: str(v) for k, v in series_labels.items() if _present(v)}
    labels.update(rule.labels)
    labels["alertname"] = rule.name
    labels["severity"] = rule.severity
    device = labels.get("device", "")
    values: dict[str, Any] = {**labels, "value": value, **(extra or {})}
    values["dashboard_url"] = (
        f"{ctx.external_url}/devices/{device}" if device else f"{ctx.external_url}/alerts"
    )
    annotations = {
        "summary": r.render(rule.summary, values),
        "dashboard_url": values["dashboard_url"],
    }
    if rule.description:
        annotations["description"] = r.render(rule.description, values)
    if rule.runbook_url:
        annotations["runbook_url"] = r.render(rule.runbook_url, values)
    return Finding(
        fingerprint(labels), rule.name, rule.severity, labels, annotations, value, active_since
    )


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _label_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ("time", "value")]


def _rows(df: pd.DataFrame) -> Iterable[tuple[dict[str, Any], float, pd.Timestamp]]:
    cols = _label_columns(df)
    for rec in df.to_dict("records"):
        yield {c: rec[c] for c in cols if _present(rec[c])}, float(rec["value"]), rec["time"]


def eval_threshold(rule: r.ThresholdRule, ctx: EvalContext) -> list[Finding]:
    df = ctx.latest(rule.metric)
    if df.empty:
        return []
    fresh = df["time"] >= pd.Timestamp(ctx.now - timedelta(seconds=rule.stale_after_s))
    df = df[fresh & _OPS[rule.op](df["value"], rule.threshold)]
    extra = {"threshold": rule.threshold, "metric": rule.metric}
    return [
        make_finding(rule, ctx, {"metric": rule.metric, **labels}, value=v, extra=extra)
        for labels, v, _t in _rows(df)
        if matches_all(rule.matchers, labels)
    ]


def _latest_flags(
    rule: r.RuleBase, ctx: EvalContext, metric: str, label: str | None, wanted: list[str] | None
) -> list[Finding]:
    """Series of a one-hot state metric whose value is 1 (or 0 for device_healthy)."""
    df = ctx.latest(metric)
    if df.empty:
        return []
    if label is None:
        df = df[df["value"] == 0]
    else:
        if label not in df.columns:
            return []
        df = df[(df["value"] == 1) & df[label].isin(wanted or [])]
    return [make_finding(rule, ctx, labels, value=v) for labels, v, _t in _rows(df)]


def eval_component(rule: r.ComponentStateRule, ctx: EvalContext) -> list[Finding]:
    return _latest_flags(rule, ctx, rule.metric, "state", rule.states)


def eval_deployment(rule: r.DeploymentStatusRule, ctx: EvalContext) -> list[Finding]:
    return _latest_flags(rule, ctx, rule.metric, "status", rule.statuses)


def eval_device_health(rule: r.DeviceHealthRule, ctx: EvalContext) -> list[Finding]:
    return _latest_flags(rule, ctx, rule.metric, None, None)


def eval_restart_loop(rule: r.RestartLoopRule, ctx: EvalContext) -> list[Finding]:
    start = ctx.now - timedelta(seconds=rule.window_s)
    df = ctx.store.query_range(
        metric=rule.metric, start=start, end=ctx.now + timedelta(milliseconds=1)
    )
    if df.empty:
        return []
    cols = _label_columns(df)
    df = df.sort_values([*cols, "time"], kind="stable").reset_index(drop=True)
    gid = df.groupby(cols, dropna=False, sort=False).ngroup()
    diff = df["value"].groupby(gid).diff()
    # a counter reset (negative step) counts the value after the reset as the increase
    step = diff.where(diff.isna() | (diff >= 0), df["value"]).fillna(0.0)
    increase = step.groupby(gid).sum()
    first = df.assign(_gid=gid).drop_duplicates("_gid").set_index("_gid")
    findings = []
    for key, inc in zip(increase.index, increase.to_numpy(), strict=True):
        if inc < rule.min_restarts:
            continue
        row = first.loc[key]
        labels = {c: row[c] for c in cols if _present(row[c])}
        findings.append(make_finding(rule, ctx, labels, value=float(inc)))
    return findings


def _episodes(
    rule: r.AnomalyRule | r.PeerOutlierRule, kind: str, ctx: EvalContext
) -> list[Finding]:
    score = AnomalyEpisode.last_score if rule.score == "last" else AnomalyEpisode.peak_score
    q = (
        select(
            AnomalyEpisode.device_id,
            Device.site_id,
            AnomalyEpisode.metric,
            AnomalyEpisode.labels,
            AnomalyEpisode.started_at,
            score,
        )
        .join(Device, Device.id == AnomalyEpisode.device_id)
        .where(
            AnomalyEpisode.kind == kind,
            AnomalyEpisode.ended_at.is_(None),
            score >= rule.min_score,
        )
    )
    if rule.metric:
        q = q.where(AnomalyEpisode.metric == rule.metric)
    findings = []
    for device, site, metric, labels, started, value in ctx.db.execute(q):
        series = {**(labels or {}), "device": device, "site": site, "metric": metric}
        extra = {"episode_started": started.isoformat(), "min_score": rule.min_score}
        findings.append(
            make_finding(rule, ctx, series, value=value, extra=extra, active_since=started)
        )
    return findings


def eval_anomaly(rule: r.AnomalyRule, ctx: EvalContext) -> list[Finding]:
    return _episodes(rule, "anomaly", ctx)


def eval_peer(rule: r.PeerOutlierRule, ctx: EvalContext) -> list[Finding]:
    return _episodes(rule, "peer", ctx)


def eval_forecast(rule: r.ForecastRule, ctx: EvalContext) -> list[Finding]:
    bound = {
        "upper": Forecast.upper_s,
        "point": Forecast.time_to_threshold_s,
        "lower": Forecast.lower_s,
    }[rule.confidence]
    q = (
        select(Forecast, Device.site_id)
        .join(Device, Device.id == Forecast.device_id)
        .where(Forecast.will_cross.is_(True), bound.is_not(None), bound < rule.within_s)
    )
    if rule.metric:
        q = q.where(Forecast.metric == rule.metric)
    if rule.limit_name:
        q = q.where(Forecast.limit_name == rule.limit_name)
    findings = []
    for fc, site in ctx.db.execute(q):
        series = {
            **(fc.labels or {}),
            "device": fc.device_id,
            "site": site,
            "metric": fc.metric,
            "limit_name": fc.limit_name,
        }
        extra = {
            "limit_value": fc.limit_value,
            "eta": humanize(fc.time_to_threshold_s),
            "eta_lower": humanize(fc.lower_s),
            "eta_upper": humanize(fc.upper_s),
            "current_value": fc.current_value,
        }
        findings.append(make_finding(rule, ctx, series, value=fc.time_to_threshold_s, extra=extra))
    return findings


def eval_absence(rule: r.AbsenceRule, ctx: EvalContext) -> list[Finding]:
    cutoff = ctx.now - timedelta(seconds=rule.silent_for_s)
    extra = {"silent_for": humanize(rule.silent_for_s)}
    if rule.target == "site":
        return _absent_sites(rule, ctx, cutoff)
    findings = []
    if rule.target == "device":
        q = select(Device.id, Device.site_id, Device.last_seen_at).where(
            Device.last_seen_at < cutoff
        )
        for device, site, seen in ctx.db.execute(q):
            if seen is None:
                continue
            silent = (ctx.now - seen).total_seconds()
            findings.append(
                make_finding(
                    rule,
                    ctx,
                    {"device": device, "site": site},
                    value=silent,
                    extra={**extra, "last_seen": seen.isoformat()},
                    active_since=seen + timedelta(seconds=rule.silent_for_s),
                )
            )
        return findings
    assert rule.metric is not None
    df = ctx.latest(rule.metric)
    if df.empty:
        return []
    df = df[df["time"] < pd.Timestamp(cutoff)]
    for labels, _v, t in _rows(df):
        seen = t.to_pydatetime()
        findings.append(
            make_finding(
                rule,
                ctx,
                {"metric": rule.metric, **labels},
                value=(ctx.now - seen).total_seconds(),
                extra={**extra, "last_seen": seen.isoformat()},
                active_since=seen + timedelta(seconds=rule.silent_for_s),
            )
        )
    return findings


def _absent_sites(rule: r.AbsenceRule, ctx: EvalContext, cutoff: datetime) -> list[Finding]:
    silent = func.sum(case((Device.last_seen_at < cutoff, 1), else_=0))
    q = (
        select(Device.site_id, func.count(Device.id), silent)
        .where(Device.last_seen_at.is_not(None))
        .group_by(Device.site_id)
    )
    findings = []
    for site, total, n_silent in ctx.db.execute(q):
        n_silent = int(n_silent or 0)
        if total < rule.min_devices or n_silent < rule.min_fraction * total:
            continue
        extra = {"silent_devices": n_silent, "site_devices": int(total)}
        findings.append(make_finding(rule, ctx, {"site": site}, value=float(n_silent), extra=extra))
    return findings


EVALUATORS: dict[str, Callable[[Any, EvalContext], list[Finding]]] = {
    "threshold": eval_threshold,
    "anomaly": eval_anomaly,
    "peer_outlier": eval_peer,
    "forecast": eval_forecast,
    "absence": eval_absence,
    "component_state": eval_component,
    "deployment_status": eval_deployment,
    "device_unhealthy": eval_device_health,
    "restart_loop": eval_restart_loop,
}


def evaluate_rule(rule: r.RuleBase, ctx: EvalContext) -> list[Finding]:
    return EVALUATORS[rule.kind](rule, ctx)  # type: ignore[attr-defined]
