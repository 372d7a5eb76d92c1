"""Alert lifecycle: findings of one evaluation -> pending / firing / flapping / resolved.

Set-based: active alerts are read in one query, resolved ones being re-raised by fingerprint
in chunks, and every change is written with executemany (``insert().values`` lists and ORM
bulk updates by primary key), so a storm of 10,000 alerts costs a handful of statements.

- A finding with no alert creates one: ``pending`` until the rule's ``for`` has passed since
  ``active_at`` (which the source may date back, e.g. an episode's start), then ``firing``.
- A firing alert without a finding resolves; a pending one is dropped (it never notified).
- Each firing<->resolved change is recorded; with ``flap_threshold`` changes inside
  ``flap_window`` the alert becomes ``flapping`` and stays there (one notification, not one per
  flap) until its raw condition has been steady for a whole window.
- A manual resolve holds until the condition clears; acknowledgements expire by themselves
  (``ack_expires_at`` is compared with the clock, nothing has to run).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from fleetwatch.alerting.evaluators import Finding
from fleetwatch.alerting.models import Alert, AlertTransition

CHUNK = 900  # stays under SQLite's bound-parameter limit


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class LifecycleCounts:
    created: int = 0
    pending: int = 0
    fired: int = 0
    resolved: int = 0
    flapping: int = 0
    dropped: int = 0
    fired_by_rule: dict[str, int] = field(default_factory=dict)


_COLS = (
    Alert.id,
    Alert.fingerprint,
    Alert.rule,
    Alert.state,
    Alert.condition,
    Alert.active_at,
    Alert.starts_at,
    Alert.last_change_at,
    Alert.resolved_by,
)


def _load(db: Session, where: Any) -> dict[str, dict[str, Any]]:
    return {row.fingerprint: row._asdict() for row in db.execute(select(*_COLS).where(where))}


def _recent_changes(db: Session, ids: Iterable[int], since: datetime) -> dict[int, int]:
    counts: dict[int, int] = {}
    for part in chunks(list(ids)):
        q = (
            select(AlertTransition.alert_id, func.count())
            .where(AlertTransition.alert_id.in_(part), AlertTransition.at >= since)
            .group_by(AlertTransition.alert_id)
        )
        counts.update({int(a): int(n) for a, n in db.execute(q)})
    return counts


class _Plan:
    """Changes collected during one pass, written in bulk at the end."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.deletes: list[int] = []
        self.transitions: list[tuple[str | int, str]] = []  # (alert id or new fingerprint, state)
        self.counts = LifecycleCounts()

    def fired(self, rule: str) -> None:
        self.counts.fired += 1
        self.counts.fired_by_rule[rule] = self.counts.fired_by_rule.get(rule, 0) + 1


def apply_findings(
    db: Session,
    *,
    now: datetime,
    findings: Sequence[Finding],
    rule_for_s: dict[str, float],
    evaluated_rules: set[str],
    flap_window_s: float,
    flap_threshold: int,
) -> LifecycleCounts:
    """Move rule alerts through their lifecycle; ``evaluated_rules`` are those that ran cleanly.

    Active alerts of a rule that failed this round are left untouched (a store outage must not
    resolve everything); those of rules no longer configured resolve.
    """
    plan = _Plan(now)
    by_fp = {f.fingerprint: f for f in findings}
    since = now - timedelta(seconds=flap_window_s)
    active, known, flips = _snapshot(db, by_fp, since)
    for fp, f in by_fp.items():
        row = active.get(fp) or known.get(fp)
        for_s = rule_for_s.get(f.rule, 0.0)
        if row is None:
            _create(plan, f, for_s)
        else:
            _seen(plan, row, f, for_s, flips.get(row["id"], 0), flap_threshold)

    def cleared(row: dict[str, Any]) -> bool:  # its rule ran cleanly, or is gone
        return row["fingerprint"] not in by_fp and (
            row["rule"] in evaluated_rules or row["rule"] not in rule_for_s
        )

    held = _load(
        db,
        (Alert.kind == "rule")
        & (Alert.state == "resolved")
        & Alert.resolved_by.is_not(None)
        & Alert.condition.is_(True),
    )
    for row in held.values():  # a manual resolve holds only until the condition clears
        if cleared(row):
            plan.updates.append({"id": row["id"], "condition": False, "resolved_by": None})
    for row in active.values():
        if cleared(row):
            _cleared(plan, row, flips.get(row["id"], 0), flap_threshold)
    changed = {key for key, _state in plan.transitions}
    for row in active.values():
        if row["id"] in changed:
            continue
        if row["state"] == "flapping" and row["last_change_at"] <= since:
            _unflap(plan, row, by_fp.get(row["fingerprint"]))
    _write(db, plan)
    return plan.counts


def _snapshot(
    db: Session, by_fp: dict[str, Finding], since: datetime
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[int, int]]:
    """Active rule alerts, stored rows of the other findings, and recent changes per alert."""
    active = _load(db, (Alert.kind == "rule") & (Alert.state != "resolved"))
    missing = [fp for fp in by_fp if fp not in active]
    known: dict[str, dict[str, Any]] = {}
    for part in chunks(missing):
        known.update(_load(db, Alert.fingerprint.in_(part)))
    ids = [a["id"] for a in active.values() if a["state"] != "pending"]
    flips = _recent_changes(db, ids + [a["id"] for a in known.values()], since)
    return active, known, flips


def _create(plan: _Plan, f: Finding, for_s: float) -> None:
    now = plan.now
    active_at = min(f.active_since or now, now)
    firing = (now - active_at).total_seconds() >= for_s
    plan.inserts.append(
        {
            "fingerprint": f.fingerprint,
            "rule": f.rule,
            "kind": "rule",
            "state": "firing" if firing else "pending",
            "condition": True,
            "severity": f.severity,
            "device": f.labels.get("device"),
            "site": f.labels.get("site"),
            "labels": f.labels,
            "annotations": f.annotations,
            "value": f.value,
            "active_at": active_at,
            "starts_at": now if firing else None,
            "ends_at": None,
            "last_evaluated": now,
            "last_change_at": now,
        }
    )
    plan.counts.created += 1
    if firing:
        plan.fired(f.rule)
        plan.transitions.append((f.fingerprint, "firing"))
    else:
        plan.counts.pending += 1


def _seen(
    plan: _Plan, row: dict[str, Any], f: Finding, for_s: float, flips: int, threshold: int
) -> None:
    now = plan.now
    upd: dict[str, Any] = {
        "id": row["id"],
        "annotations": f.annotations,
        "value": f.value,
        "last_evaluated": now,
        "condition": True,
    }
    state = row["state"]
    if state == "pending" and (now - row["active_at"]).total_seconds() >= for_s:
        upd.update(state="firing", starts_at=now, last_change_at=now)
        plan.fired(f.rule)
        plan.transitions.append((row["id"], "firing"))
    elif state == "flapping" and not row["condition"]:
        upd["last_change_at"] = now
        plan.transitions.append((row["id"], "firing"))
    elif state == "resolved" and not (row["resolved_by"] and row["condition"]):
        _reraise(plan, row, f, for_s, flips, threshold, upd)
    plan.updates.append(upd)


def _reraise(
    plan: _Plan,
    row: dict[str, Any],
    f: Finding,
    for_s: float,
    flips: int,
    threshold: int,
    upd: dict[str, Any],
) -> None:
    now = plan.now
    reset_ack = {"acknowledged_by": None, "acknowledged_at": None, "ack_expires_at": None}
    upd.update(ends_at=None, resolved_by=None, last_change_at=now, **reset_ack)
    if flips + 1 >= threshold:
        upd.update(state="flapping", starts_at=row["starts_at"] or now)
        plan.counts.flapping += 1
        plan.transitions.append((row["id"], "firing"))
        return
    active_at = min(f.active_since or now, now)
    if (now - active_at).total_seconds() >= for_s:
        upd.update(state="firing", active_at=active_at, starts_at=now)
        plan.fired(f.rule)
        plan.transitions.append((row["id"], "firing"))
    else:
        upd.update(state="pending", active_at=active_at, starts_at=None)
        plan.counts.pending += 1


def _cleared(plan: _Plan, row: dict[str, Any], flips: int, threshold: int) -> None:
    now = plan.now
    state = row["state"]
    if state == "pending":
        plan.deletes.append(row["id"])
        plan.counts.dropped += 1
        return
    upd: dict[str, Any] = {"id": row["id"], "last_evaluated": now, "condition": False}
    if state == "firing":
        if flips + 1 >= threshold:
            upd.update(state="flapping", last_change_at=now)
            plan.counts.flapping += 1
        else:
            upd.update(state="resolved", ends_at=now, last_change_at=now)
            plan.counts.resolved += 1
        plan.transitions.append((row["id"], "resolved"))
    elif state == "flapping" and row["condition"]:
        upd["last_change_at"] = now
        plan.transitions.append((row["id"], "resolved"))
    plan.updates.append(upd)


def _unflap(plan: _Plan, row: dict[str, Any], f: Finding | None) -> None:
    """A flapping alert whose condition held steady for a whole window settles."""
    now = plan.now
    if f is not None:
        plan.updates.append({"id": row["id"], "state": "firing", "last_evaluated": now})
    else:
        plan.updates.append(
            {"id": row["id"], "state": "resolved", "ends_at": now, "last_evaluated": now}
        )
        plan.counts.resolved += 1


def _write(db: Session, plan: _Plan) -> None:
    if plan.inserts:
        # Core executemany: one cached statement, batched by the driver ("insertmanyvalues")
        db.execute(insert(cast(Table, Alert.__table__)), plan.inserts)
    if plan.updates:
        # later entries for one id (e.g. settling a flap) win: merge per id, then group by shape
        merged: dict[int, dict[str, Any]] = {}
        for upd in plan.updates:
            merged.setdefault(upd["id"], {}).update(upd)
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for upd in merged.values():
            shapes.setdefault(tuple(sorted(upd)), []).append(upd)
        for rows in shapes.values():
            db.execute(update(Alert), rows)
    if plan.deletes:
        for part in chunks(plan.deletes):
            db.execute(delete(Alert).where(Alert.id.in_(part)))
    if plan.transitions:
        new_fps = [k for k, _s in plan.transitions if isinstance(k, str)]
        ids: dict[str, int] = {}
        for part in chunks(new_fps):
            q = select(Alert.fingerprint, Alert.id).where(Alert.fingerprint.in_(part))
            ids.update({fp: i for fp, i in db.execute(q)})
        rows = [
            {"alert_id": ids[k] if isinstance(k, str) else k, "at": plan.now, "to_state": s}
            for k, s in plan.transitions
        ]
        db.execute(insert(cast(Table, AlertTransition.__table__)), rows)
    db.flush()
