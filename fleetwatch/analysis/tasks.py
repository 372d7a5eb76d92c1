"""Celery tasks of the analysis cycle: beat starts a cycle, one task analyses one shard."""

from __future__ import annotations

import socket
from typing import Any

from celery import group

from fleetwatch import resources
from fleetwatch.analysis import service
from fleetwatch.db import session_scope
from fleetwatch.store import StoreUnavailable
from fleetwatch.telemetry import now_ms as current_ms
from fleetwatch.worker import FleetwatchTask, celery_app


@celery_app.task(
    name="fleetwatch.analysis.analyse_shard",
    bind=True,
    base=FleetwatchTask,
    autoretry_for=(StoreUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def analyse_shard(
    self: FleetwatchTask, shard: int, n_shards: int, cycle_id: str, now_ms: int
) -> dict[str, Any]:
    """Analyse one shard of one cycle; a redelivered task finds its shard done and returns."""
    res = resources.get(self.settings)
    with session_scope(res.sessions) as db:
        summary = service.run_shard(
            db=db,
            store=res.store,
            settings=self.settings.analysis,
            shard=shard,
            n_shards=n_shards,
            cycle_id=cycle_id,
            now_ms=now_ms,
            worker=getattr(self.request, "hostname", None) or socket.gethostname(),
        )
    return summary.as_dict()


@celery_app.task(name="fleetwatch.analysis.start_cycle", bind=True, base=FleetwatchTask)
def start_cycle(self: FleetwatchTask, now_ms: int | None = None) -> dict[str, Any]:
    """Fan a cycle out to one task per shard; the cycle id is the grid step it ends on."""
    config = self.settings.analysis
    now = now_ms if now_ms is not None else current_ms()
    step_ms = int(config.step_s * 1000)
    cycle_id = str(now - now % step_ms)
    shards = group(analyse_shard.s(i, config.shards, cycle_id, now) for i in range(config.shards))
    shards.apply_async()
    return {"cycle_id": cycle_id, "shards": config.shards}
