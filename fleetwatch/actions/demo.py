"""Actions inside ``fleetwatch demo``: a stage that runs one policy pass per tick.

Dry-run unless the demo's settings say ``[actions] mode = "act"``: every proposal is recorded
with its reasons and the gate's verdict, nothing is written anywhere. When the simulator knows
when a fault will (or did) fail a device, the report gives each action's lead time: how long
before that failure fleetwatch proposed it. Plugging it in::

    stage = ActionsStage(settings, db_factory, ground_truth=sim.ground_truth)
    stage.start(); ...; stage.tick(now); ...; stage.report(); stage.stop()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetwatch.actions import service
from fleetwatch.actions.models import Action
from fleetwatch.db import session_scope
from fleetwatch.plugins.actuator import Actuator
from fleetwatch.settings import Settings

NOT_PROPOSED = ("refused", "rejected", "superseded")
APPLIED = ("applied", "in_progress")


def _failure_times(truths: Iterable[Any]) -> dict[str, float]:
    """Earliest known failure (epoch s) per device: expected failure, else the crossing."""
    out: dict[str, float] = {}
    for truth in truths:
        get = truth.get if isinstance(truth, dict) else lambda k, t=truth: getattr(t, k, None)
        at = get("expected_failure_at") or get("crossed_at")
        if isinstance(at, str):
            at = datetime.fromisoformat(at).timestamp()
        device = get("device")
        if device and isinstance(at, int | float):
            out[str(device)] = min(float(at), out.get(str(device), float("inf")))
    return out


class ActionsStage:
    """Evaluate the action policies on every demo tick (dry-run by default)."""

    name = "actions"

    def __init__(
        self,
        settings: Settings,
        db_factory: Callable[[], Session],
        *,
        ground_truth: Callable[[], Iterable[Any]] | None = None,
        actuators: Sequence[Actuator] = (),
    ) -> None:
        self.settings = settings
        self.db_factory = db_factory
        self.ground_truth = ground_truth
        self.actuators = list(actuators)
        self.ticks = 0
        self.storms: set[str] = set()

    def start(self) -> None:
        self.ticks = 0

    def tick(self, now: datetime) -> dict[str, int]:
        with session_scope(self.db_factory) as db:  # type: ignore[arg-type]
            summary = service.evaluate(
                db=db, settings=self.settings.actions, now=now, actuators=self.actuators
            )
        self.ticks += 1
        self.storms.update(summary.storms)
        return {
            "planned": summary.planned,
            "applied": summary.applied,
            "pending": summary.pending,
            "refused": summary.refused,
        }

    def stop(self) -> None:
        for actuator in self.actuators:
            actuator.close()

    def report(self) -> dict[str, Any]:
        failures = _failure_times(self.ground_truth() if self.ground_truth else ())
        with session_scope(self.db_factory) as db:  # type: ignore[arg-type]
            rows = list(db.scalars(select(Action).order_by(Action.created_at, Action.id)))
            actions = [self._describe(row, failures) for row in rows]
        proposed = [a for a in actions if a["state"] not in NOT_PROPOSED]
        leads = [a["lead_time_s"] for a in proposed if a.get("lead_time_s") is not None]
        return {
            "mode": self.settings.actions.mode,
            "ticks": self.ticks,
            "actions_proposed": len(proposed),
            "actions_applied": sum(1 for a in actions if a["state"] in APPLIED),
            "refusals": sum(1 for a in actions if a["state"] == "refused"),
            "storms": sorted(self.storms),
            "median_lead_time_s": sorted(leads)[len(leads) // 2] if leads else None,
            "actions": actions,
        }

    @staticmethod
    def _describe(row: Action, failures: dict[str, float]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": row.id,
            "kind": row.kind,
            "device": row.device_id,
            "site": row.site_id,
            "policy": row.policy,
            "state": row.state,
            "at": row.created_at.astimezone(UTC).isoformat(),
            "reasons": list(row.reasons or []),
            "gate": list(row.gate_reasons or []),
            "forecast_lead_time_s": row.lead_time_s,
        }
        failure = failures.get(row.device_id)
        if failure is not None:
            item["lead_time_s"] = round(failure - row.created_at.timestamp(), 1)
        return item
