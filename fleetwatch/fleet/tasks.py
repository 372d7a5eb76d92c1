"""Celery tasks of the fleet inventory."""

from __future__ import annotations

from typing import Any

from fleetwatch.db import make_engine, session_factory, session_scope
from fleetwatch.fleet import service
from fleetwatch.fleet.schemas import DeviceIn
from fleetwatch.worker import FleetwatchTask, celery_app


@celery_app.task(name="fleetwatch.fleet.register_devices", bind=True, base=FleetwatchTask)
def register_devices(self: FleetwatchTask, devices: list[dict[str, Any]]) -> dict[str, int]:
    """Upsert devices found by a central collector (idempotent: a redelivery changes nothing)."""
    engine = make_engine(self.settings.database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            count = service.upsert_devices(db=db, devices=(DeviceIn(**d) for d in devices))
    finally:
        engine.dispose()
    return {"registered": count}
