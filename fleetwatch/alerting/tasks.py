"""Celery tasks of alerting: thin wrappers around service.evaluate and service.dispatch.

Both are idempotent for a given ``now`` and derive every timer from the state DB, so beat can
fire them on any worker, and a redelivered task changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from fleetwatch.alerting import service
from fleetwatch.db import make_engine, session_factory, session_scope, utcnow
from fleetwatch.plugins import PluginRegistry
from fleetwatch.store import open_store
from fleetwatch.worker import FleetwatchTask, celery_app


@cache
def _registry() -> PluginRegistry:
    return PluginRegistry.from_entry_points(["fleetwatch.notifiers"])


def _now(now_iso: str | None) -> datetime:
    return datetime.fromisoformat(now_iso) if now_iso else utcnow()


@celery_app.task(name="fleetwatch.alerting.evaluate", bind=True, base=FleetwatchTask)
def evaluate(self: FleetwatchTask, now_iso: str | None = None) -> dict[str, Any]:
    """Evaluate every rule over the latest metrics and analysis results."""
    settings = self.settings
    engine = make_engine(settings.database_url)
    store = open_store(settings)
    try:
        with session_scope(session_factory(engine)) as db:
            summary = service.evaluate(db=db, store=store, now=_now(now_iso), settings=settings)
    finally:
        store.close()
        engine.dispose()
    return summary.model_dump(include={"rules_evaluated", "fired", "resolved", "rule_errors"})


@celery_app.task(name="fleetwatch.alerting.dispatch", bind=True, base=FleetwatchTask)
def dispatch(self: FleetwatchTask, now_iso: str | None = None) -> dict[str, Any]:
    """Flush due alert groups into notifications and deliver them."""
    settings = self.settings
    engine = make_engine(settings.database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            summary = service.dispatch(
                db=db, now=_now(now_iso), settings=settings, registry=_registry()
            )
    finally:
        engine.dispose()
    return summary.model_dump(include={"notifications", "sent", "failed", "deferred"})
