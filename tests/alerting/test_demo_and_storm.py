"""The demo stage end to end, and an alert storm collapsing into one notification per group."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from fleetwatch.alerting import service
from fleetwatch.alerting.demo import DEMO_SECRET, AlertingStage
from fleetwatch.alerting.models import Alert, AlertGroup, Notification
from fleetwatch.alerting.notifiers.webhook import verify_signature
from fleetwatch.alerting.ruleset import DEFAULT_RULES, parse_config, read_file
from fleetwatch.telemetry import make_sample

from .conftest import T0, make_settings, seed_fleet


def test_demo_stage_raises_notifies_and_reports(sqlite_db, metrics, tmp_path):
    settings = make_settings(tmp_path)
    with sqlite_db.session() as db:
        seed_fleet(db, {"lab": 3}, last_seen=T0)
    metrics.write(
        [
            make_sample(
                "temperature_celsius",
                {"device": "lab-dev00001", "site": "lab", "sensor": "tj"},
                97,
                T0,
            )
        ]
    )
    stage = AlertingStage(settings, sqlite_db.factory, metrics)
    stage.start()
    try:
        for minutes in (0, 1, 6, 7, 8):
            stage.tick(T0 + timedelta(minutes=minutes))
        report = stage.report()
        lines = stage.summary_lines()
        received = list(stage.receiver.received)
    finally:
        stage.stop()
    # all three devices stop reporting after T0: the site outage inhibits the device alerts
    assert report["alerts_by_rule"]["SiteUnreachable"] == 1
    assert report["alerts_by_rule"]["DeviceSilent"] == 3
    assert report["alerts_raised"] == sum(report["alerts_by_rule"].values())
    assert (
        report["notifications"] >= 1
        and report["notifications_delivered"] == report["notifications"]
    )
    assert report["receiver_requests"] == len(received) >= 1
    assert any("SiteUnreachable" in line for line in lines)
    first = received[0]
    assert verify_signature(
        secret=DEMO_SECRET.encode(),
        body=first.body,
        timestamp=first.headers["X-Fleetwatch-Timestamp"],
        signature=first.headers["X-Fleetwatch-Signature"],
        now=T0 + timedelta(minutes=6),
    )


def test_storm_of_silent_devices_is_one_notification_per_group(
    any_db, metrics, receiver, registry, tmp_path
):
    raw = read_file(DEFAULT_RULES)
    raw["receivers"] = [
        {
            "name": "ops",
            "notifier": "alertmanager",
            "max_alerts": 50,
            "config": {"url": f"{receiver.url}/storm"},
        }
    ]
    raw["route"]["receiver"] = "ops"
    raw["inhibit_rules"] = []  # every device alert stays visible: grouping alone must cope
    config = parse_config(raw)
    settings = make_settings(tmp_path)
    with any_db.session() as db:
        seed_fleet(db, {"big": 3000}, last_seen=T0)
    now = T0 + timedelta(minutes=10)
    with any_db.session() as db:
        summary = service.evaluate(db=db, store=metrics, now=now, settings=settings, config=config)
        db.commit()
    assert summary.fired_by_rule == {"SiteUnreachable": 1, "DeviceSilent": 3000}
    for at in (now, now + timedelta(seconds=30), now + timedelta(seconds=60)):
        with any_db.session() as db:
            service.dispatch(db=db, now=at, settings=settings, registry=registry, config=config)
    bodies = [r.json() for r in receiver.received]
    assert sorted(b["groupLabels"]["alertname"] for b in bodies) == [
        "DeviceSilent",
        "SiteUnreachable",
    ]
    device_msg = next(b for b in bodies if b["groupLabels"]["alertname"] == "DeviceSilent")
    assert len(device_msg["alerts"]) == 50 and device_msg["truncatedAlerts"] == 2950
    assert device_msg["commonLabels"] == {
        "alertname": "DeviceSilent",
        "severity": "error",
        "site": "big",
    }
    with any_db.session() as db:
        assert db.scalar(select(func.count()).select_from(Notification)) == 2
        assert db.scalar(select(func.count()).select_from(AlertGroup)) == 2
        assert (
            db.scalar(select(func.count()).select_from(Alert).where(Alert.state == "firing"))
            == 3001
        )
