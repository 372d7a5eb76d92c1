"""Celery wiring: every task is routed; embedded mode runs the same task in-process."""

from __future__ import annotations

from pathlib import Path

from fleetwatch.db import make_engine, migrations, session_factory, session_scope
from fleetwatch.fleet import service
from fleetwatch.settings import load_settings
from fleetwatch.worker import QUEUES, TASK_ROUTES, celery_app, configure, route_for


def _fleetwatch_tasks() -> list[str]:
    celery_app.loader.import_default_modules()
    return sorted(name for name in celery_app.tasks if name.startswith("fleetwatch."))


def test_every_task_has_a_route() -> None:
    tasks = _fleetwatch_tasks()
    assert "fleetwatch.fleet.register_devices" in tasks
    unrouted = [name for name in tasks if route_for(name) is None]
    assert unrouted == []
    assert set(route_for(t) for t in tasks) <= set(QUEUES)


def test_route_for_rejects_unknown_names() -> None:
    assert route_for("somebody.else.task") is None
    assert route_for("fleetwatch.alerting.evaluate") == "alerts"
    assert all(pattern.startswith("fleetwatch.") for pattern in TASK_ROUTES)


def test_tasks_acknowledge_late() -> None:
    for name in _fleetwatch_tasks():
        task = celery_app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost, name


def test_embedded_mode_runs_the_task_in_process(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, celery={"embedded": True})
    migrations.upgrade(settings.database_url)
    configure(settings)
    try:
        from fleetwatch.fleet.tasks import register_devices

        result = register_devices.delay(
            [
                {
                    "id": "coral-gw-1",
                    "site_id": "lyon",
                    "hardware_model": "x86-gateway",
                    "accelerator": "coral-pcie",
                }
            ]
        )
        assert result.get() == {"registered": 1}
        # Redelivery is harmless: the same upsert again changes nothing.
        register_devices.delay(
            [{"id": "coral-gw-1", "site_id": "lyon", "hardware_model": "x86-gateway"}]
        ).get()
        with session_scope(session_factory(make_engine(settings.database_url))) as db:
            rows, total = service.list_devices(db=db)
            assert total == 1 and rows[0].site_id == "lyon"
    finally:
        configure(load_settings(data_dir=tmp_path))
