"""The Celery application: one base task, one route table, embedded mode for the demo and tests.

Tasks are thin: they take ids and primitives, reload state, call one service function and return
a small summary. With ``celery.embedded = true`` the same task functions run in-process
(``task_always_eager``): one code path for the demo and for a fleet of workers.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery, Task

from fleetwatch import selfmetrics
from fleetwatch.settings import Settings, load_settings

# Every module that defines tasks; a domain adds its own line.
TASK_MODULES = (
    "fleetwatch.fleet.tasks",
    "fleetwatch.analysis.tasks",
    "fleetwatch.actions.tasks",
    "fleetwatch.alerting.tasks",
)

# One route table: a task whose name matches no pattern fails the routing test.
TASK_ROUTES: dict[str, dict[str, str]] = {
    "fleetwatch.fleet.*": {"queue": "fleet"},
    "fleetwatch.analysis.*": {"queue": "analysis"},
    "fleetwatch.alerting.*": {"queue": "alerts"},
    "fleetwatch.actions.*": {"queue": "actions"},
}
QUEUES = tuple(sorted({route["queue"] for route in TASK_ROUTES.values()}))


class FleetwatchTask(Task):  # type: ignore[misc]
    """Base task: acknowledged after it ran (a crashed worker's task is redelivered), timed."""

    acks_late = True
    reject_on_worker_lost = True
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        configured = self.app.conf.get("fleetwatch_settings")
        if configured is not None:
            return configured  # type: ignore[no-any-return]
        if FleetwatchTask._settings is None:
            FleetwatchTask._settings = load_settings()
        return FleetwatchTask._settings

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().__call__(*args, **kwargs)
        except Exception:
            selfmetrics.TASK_FAILURES.labels(self.name).inc()
            raise
        finally:
            selfmetrics.TASK_SECONDS.labels(self.name).observe(time.perf_counter() - started)


celery_app = Celery("fleetwatch", task_cls=FleetwatchTask, include=list(TASK_MODULES))
celery_app.conf.update(
    task_routes=TASK_ROUTES,
    task_default_queue="fleet",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
)


def configure(settings: Settings, app: Celery = celery_app) -> Celery:
    """Point the app at the broker the settings name, or run tasks in-process when embedded."""
    app.conf.update(
        broker_url=settings.celery.broker_url,
        result_backend=settings.celery.result_backend,
        task_always_eager=settings.celery.embedded,
        task_eager_propagates=True,
        fleetwatch_settings=settings,
        beat_schedule=beat_schedule(settings),
    )
    return app


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Periodic work; a domain adds its entries here."""
    schedule: dict[str, dict[str, Any]] = {
        "analysis-cycle": {
            "task": "fleetwatch.analysis.start_cycle",
            "schedule": settings.celery.analysis_interval_s,
        },
    }
    schedule["actions-evaluate"] = {
        "task": "fleetwatch.actions.evaluate",
        "schedule": settings.actions.evaluate_interval_s,
    }
    schedule["alerting-evaluate"] = {
        "task": "fleetwatch.alerting.evaluate",
        "schedule": settings.alerting.evaluation_interval_s,
    }
    schedule["alerting-dispatch"] = {
        "task": "fleetwatch.alerting.dispatch",
        "schedule": settings.alerting.dispatch_interval_s,
    }
    return schedule


def route_for(task_name: str) -> str | None:
    """The queue a task name routes to through :data:`TASK_ROUTES`, or None."""
    from fnmatch import fnmatchcase

    for pattern, route in TASK_ROUTES.items():
        if fnmatchcase(task_name, pattern):
            return route["queue"]
    return None
