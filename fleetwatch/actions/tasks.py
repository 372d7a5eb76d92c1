"""Celery tasks of actions: thin wrappers around :mod:`fleetwatch.actions.service`.

Both are safe to redeliver: decisions are unique per idempotency key and applying claims the
action row first, so a second delivery of the same task writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fleetwatch.actions import service
from fleetwatch.actions.actuators import build_actuators, close_all
from fleetwatch.db import make_engine, session_factory, session_scope
from fleetwatch.worker import FleetwatchTask, celery_app


def _now(now: str | None) -> datetime:
    return datetime.fromisoformat(now).astimezone(UTC) if now else datetime.now(tz=UTC)


@celery_app.task(name="fleetwatch.actions.evaluate", bind=True, base=FleetwatchTask)
def evaluate(self: FleetwatchTask, now: str | None = None) -> dict[str, object]:
    """One pass of policies → gate → decisions (→ applications in act mode)."""
    settings = self.settings
    actuators = build_actuators(settings.actions)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            summary = service.evaluate(
                db=db, settings=settings.actions, now=_now(now), actuators=actuators
            )
    finally:
        close_all(actuators)
        engine.dispose()
    return summary.as_dict()


@celery_app.task(name="fleetwatch.actions.apply_action", bind=True, base=FleetwatchTask)
def apply_action(self: FleetwatchTask, action_id: int, now: str | None = None) -> dict[str, object]:
    """Apply one approved action (a deleted or already claimed action is a no-op)."""
    settings = self.settings
    if settings.actions.mode != "act":
        return {"action_id": action_id, "state": "skipped: dry-run"}
    actuators = build_actuators(settings.actions)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            state = service.apply_action(
                db=db,
                action_id=action_id,
                settings=settings.actions,
                now=_now(now),
                actuators=actuators,
            )
    finally:
        close_all(actuators)
        engine.dispose()
    return {"action_id": action_id, "state": state}
