"""The Celery tasks run the same service functions (eagerly here) and are routed to `alerts`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleetwatch.alerting import tasks
from fleetwatch.db import migrations
from fleetwatch.worker import beat_schedule, celery_app, route_for

from .conftest import T0, make_settings


@pytest.fixture
def task_settings(tmp_path, receiver):
    config = {
        "rules": [{"name": "DeviceSilent", "kind": "absence", "silent_for": 60}],
        "route": {"receiver": "hook", "group_wait": "0s"},
        "receivers": [
            {
                "name": "hook",
                "notifier": "webhook",
                "config": {"url": receiver.url, "secret": "0123456789abcdef"},
            }
        ],
    }
    settings = make_settings(tmp_path, config)
    migrations.upgrade(settings.database_url)
    previous = celery_app.conf.get("fleetwatch_settings")
    celery_app.conf.fleetwatch_settings = settings
    yield settings
    celery_app.conf.fleetwatch_settings = previous


def test_tasks_are_routed_and_scheduled(task_settings):
    assert route_for("fleetwatch.alerting.evaluate") == "alerts"
    assert route_for("fleetwatch.alerting.dispatch") == "alerts"
    schedule = beat_schedule(task_settings)
    assert schedule["alerting-evaluate"]["task"] == "fleetwatch.alerting.evaluate"
    assert schedule["alerting-dispatch"]["schedule"] == task_settings.alerting.dispatch_interval_s


def test_evaluate_and_dispatch_tasks_end_to_end(task_settings, receiver):
    from fleetwatch.db import make_engine, session_factory

    from .conftest import seed_fleet

    engine = make_engine(task_settings.database_url)
    with session_factory(engine)() as db:
        seed_fleet(db, {"s": 1}, last_seen=T0)
    engine.dispose()
    later = (T0 + timedelta(minutes=5)).isoformat()
    first = tasks.evaluate.apply(kwargs={"now_iso": later}).get()
    again = tasks.evaluate.apply(kwargs={"now_iso": later}).get()
    assert first["fired"] == 1 and again["fired"] == 0  # redelivery changes nothing
    sent = tasks.dispatch.apply(kwargs={"now_iso": later}).get()
    assert sent == {"notifications": 1, "sent": 1, "failed": 0, "deferred": 0}
    assert receiver.received[0].json()["alerts"][0]["labels"]["device"] == "s-dev00000"
