"""Every rule kind evaluated in bulk over a real metrics store and state DB."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from fleetwatch.alerting import service
from fleetwatch.alerting.ruleset import parse_config
from fleetwatch.analysis.models import AnomalyEpisode, Forecast
from fleetwatch.telemetry import make_sample

from .conftest import T0, make_settings, seed_fleet

NOW = T0 + timedelta(hours=1)


def run(state, store, tmp_path, rules, now=NOW):
    settings = make_settings(tmp_path)
    config = parse_config({"rules": rules})
    with state.session() as db:
        summary = service.evaluate(db=db, store=store, now=now, settings=settings, config=config)
        db.commit()
        alerts = service.list_alerts(db=db)
    return summary, {(a.rule, a.device, a.state): a for a in alerts}


def sample(name, device, value, at=NOW, **labels):
    return make_sample(name, {"device": device, "site": "s1", **labels}, value, at)


@pytest.fixture
def fleet(sqlite_db):
    with sqlite_db.session() as db:
        seed_fleet(db, {"s1": 4}, last_seen=NOW)
    return sqlite_db


def test_threshold_with_for_and_matchers(fleet, metrics, tmp_path):
    metrics.write(
        [
            sample("temperature_celsius", "s1-dev00000", 93.5, sensor="tj"),
            sample("temperature_celsius", "s1-dev00001", 93.5, sensor="board"),
            sample("temperature_celsius", "s1-dev00002", 70.0, sensor="tj"),
            sample(
                "temperature_celsius", "s1-dev00003", 99.0, NOW - timedelta(hours=1), sensor="tj"
            ),
        ]
    )
    rule = {
        "name": "Hot",
        "kind": "threshold",
        "metric": "temperature_celsius",
        "threshold": 90,
        "matchers": ['sensor="tj"'],
        "for": "5m",
        "summary": "{device} {sensor} {value:.1f}>{threshold}",
        "description": "see {dashboard_url}",
    }
    summary, alerts = run(fleet, metrics, tmp_path, [rule])
    assert summary.pending == 1 and summary.fired == 0  # the stale s1-dev00003 point is ignored
    alert = alerts[("Hot", "s1-dev00000", "pending")]
    assert alert.annotations["summary"] == "s1-dev00000 tj 93.5>90.0"
    assert alert.annotations["description"] == "see http://127.0.0.1:8050/devices/s1-dev00000"
    assert alert.labels == {
        "alertname": "Hot",
        "severity": "warning",
        "device": "s1-dev00000",
        "site": "s1",
        "sensor": "tj",
        "metric": "temperature_celsius",
    }
    metrics.write(
        [
            sample(
                "temperature_celsius", "s1-dev00000", 94.0, NOW + timedelta(minutes=5), sensor="tj"
            )
        ]
    )
    summary, alerts = run(fleet, metrics, tmp_path, [rule], now=NOW + timedelta(minutes=5))
    assert summary.fired == 1 and alerts[("Hot", "s1-dev00000", "firing")].value == 94.0


def test_anomaly_and_peer_outlier_over_open_episodes(fleet, metrics, tmp_path):
    rows = [
        dict(
            device_id="s1-dev00000",
            metric="power_watts",
            labels={"rail": "vdd_in"},
            kind="anomaly",
            started_at=NOW - timedelta(minutes=20),
            ended_at=None,
            peak_score=0.999,
            last_score=0.97,
        ),
        dict(
            device_id="s1-dev00001",
            metric="power_watts",
            labels={},
            kind="anomaly",
            started_at=NOW - timedelta(minutes=2),
            ended_at=None,
            peak_score=0.999,
            last_score=0.98,
        ),
        dict(
            device_id="s1-dev00002",
            metric="power_watts",
            labels={},
            kind="anomaly",
            started_at=NOW - timedelta(minutes=30),
            ended_at=NOW - timedelta(minutes=1),
            peak_score=0.999,
            last_score=0.99,
        ),
        dict(  # open long enough, but its score has fallen back under the rule's level
            device_id="s1-dev00002",
            metric="temperature_celsius",
            labels={},
            kind="anomaly",
            started_at=NOW - timedelta(minutes=30),
            ended_at=None,
            peak_score=0.999,
            last_score=0.5,
        ),
        dict(
            device_id="s1-dev00003",
            metric="gpu_utilization_ratio",
            labels={},
            kind="peer",
            started_at=NOW - timedelta(minutes=30),
            ended_at=None,
            peak_score=0.97,
            last_score=0.95,
        ),
    ]
    with fleet.session() as db:
        db.execute(
            insert(AnomalyEpisode),
            [{**r, "series_key": f"{r['metric']}|{r['device_id']}"} for r in rows],
        )
        db.commit()
    rules = [
        {"name": "Anomalous", "kind": "anomaly", "min_score": 0.9, "for": "10m"},
        {"name": "Peer", "kind": "peer_outlier", "min_score": 0.8, "for": "15m"},
    ]
    summary, alerts = run(fleet, metrics, tmp_path, rules)
    # for counts from the episode's start: 20 min ago fires now, 2 min ago waits
    assert ("Anomalous", "s1-dev00000", "firing") in alerts
    assert ("Anomalous", "s1-dev00001", "pending") in alerts
    assert ("Peer", "s1-dev00003", "firing") in alerts
    assert summary.findings == 3
    assert alerts[("Anomalous", "s1-dev00000", "firing")].labels["rail"] == "vdd_in"


def test_forecast_confidence_uses_the_interval_bound(fleet, metrics, tmp_path):
    def fc(device, point, lower, upper, will_cross=True):
        return dict(
            device_id=device,
            metric="temperature_celsius",
            labels={"sensor": "tj"},
            series_key=f"t|{device}",
            limit_name="trip_point_0",
            limit_value=94.8,
            will_cross=will_cross,
            time_to_threshold_s=point,
            lower_s=lower,
            upper_s=upper,
            computed_at=NOW,
        )

    with fleet.session() as db:
        db.execute(
            insert(Forecast),
            [
                fc("s1-dev00000", 1800, 1200, 3000),  # confident within 1 h
                fc("s1-dev00001", 2400, 1200, 7200),  # likely, but the late bound is past 1 h
                fc("s1-dev00002", None, None, None, will_cross=False),
            ],
        )
        db.commit()
    base = {
        "kind": "forecast",
        "within": "1h",
        "metric": "temperature_celsius",
        "summary": "{device} hits {limit_name} ({limit_value}) in {eta} [{eta_lower}..{eta_upper}]",
    }
    _, upper = run(fleet, metrics, tmp_path, [{**base, "name": "Confident", "confidence": "upper"}])
    assert [k[1] for k in upper] == ["s1-dev00000"]
    assert upper[("Confident", "s1-dev00000", "firing")].annotations["summary"] == (
        "s1-dev00000 hits trip_point_0 (94.8) in 30m [20m..50m]"
    )
    _, point = run(fleet, metrics, tmp_path, [{**base, "name": "Likely", "confidence": "point"}])
    assert sorted(k[1] for k in point if k[0] == "Likely") == ["s1-dev00000", "s1-dev00001"]


def test_absence_of_devices_series_and_sites(fleet, metrics, tmp_path):
    from sqlalchemy import update

    from fleetwatch.fleet.models import Device

    with fleet.session() as db:
        db.execute(
            update(Device)
            .where(Device.id.in_(["s1-dev00000", "s1-dev00001", "s1-dev00002"]))
            .values(last_seen_at=NOW - timedelta(minutes=10))
        )
        db.commit()
    metrics.write(
        [
            sample("gpu_utilization_ratio", "s1-dev00003", 0.5, NOW - timedelta(minutes=30)),
            sample("gpu_utilization_ratio", "s1-dev00002", 0.5, NOW),
        ]
    )
    rules = [
        {
            "name": "DeviceSilent",
            "kind": "absence",
            "target": "device",
            "silent_for": "5m",
            "summary": "{device} quiet since {last_seen}",
        },
        {
            "name": "SeriesSilent",
            "kind": "absence",
            "target": "series",
            "metric": "gpu_utilization_ratio",
            "silent_for": "15m",
        },
        {
            "name": "SiteDown",
            "kind": "absence",
            "target": "site",
            "silent_for": "5m",
            "min_fraction": 0.75,
            "summary": "{silent_devices}/{site_devices}",
        },
    ]
    _summary, alerts = run(fleet, metrics, tmp_path, rules)
    silent = sorted(k[1] for k in alerts if k[0] == "DeviceSilent")
    assert silent == ["s1-dev00000", "s1-dev00001", "s1-dev00002"]
    assert [k[1] for k in alerts if k[0] == "SeriesSilent"] == ["s1-dev00003"]
    site_alert = next(a for k, a in alerts.items() if k[0] == "SiteDown")
    assert site_alert.labels["site"] == "s1" and site_alert.annotations["summary"] == "3/4"
    assert alerts[("DeviceSilent", "s1-dev00000", "firing")].value == 600.0


def test_state_rules_component_deployment_health_and_restart_loop(fleet, metrics, tmp_path):
    d0, d1, d2 = "s1-dev00000", "s1-dev00001", "s1-dev00002"
    samples = [
        sample("component_state", d0, 1, component="aws.greengrass.Nucleus", state="RUNNING"),
        sample("component_state", d0, 0, component="aws.greengrass.Nucleus", state="BROKEN"),
        sample("component_state", d1, 0, component="com.example.Infer", state="RUNNING"),
        sample("component_state", d1, 1, component="com.example.Infer", state="BROKEN"),
        sample("deployment_status", d2, 1, deployment="dep-42", status="FAILED"),
        sample("deployment_status", d0, 1, deployment="dep-42", status="SUCCEEDED"),
        sample("device_healthy", d0, 1),
        sample("device_healthy", d2, 0),
    ]
    for minute, count in enumerate([10, 11, 12, 1, 2]):  # a counter reset in between
        samples.append(
            sample(
                "module_restarts_total",
                d1,
                count,
                NOW - timedelta(minutes=10 - minute),
                module="edgeHub",
            )
        )
    for minute in range(5):
        samples.append(
            sample(
                "module_restarts_total",
                d0,
                4,
                NOW - timedelta(minutes=10 - minute),
                module="edgeAgent",
            )
        )
    metrics.write(samples)
    rules = [
        {"name": "ComponentBroken", "kind": "component_state", "summary": "{component} is {state}"},
        {"name": "DeploymentFailed", "kind": "deployment_status"},
        {"name": "Unhealthy", "kind": "device_unhealthy"},
        {"name": "RestartLoop", "kind": "restart_loop", "window": "15m", "min_restarts": 3},
    ]
    _summary, alerts = run(fleet, metrics, tmp_path, rules)
    assert {(k[0], k[1]) for k in alerts} == {
        ("ComponentBroken", d1),
        ("DeploymentFailed", d2),
        ("Unhealthy", d2),
        ("RestartLoop", d1),
    }
    assert (
        alerts[("ComponentBroken", d1, "firing")].annotations["summary"]
        == "com.example.Infer is BROKEN"
    )
    loop = alerts[("RestartLoop", d1, "firing")]
    assert loop.value == 4.0 and loop.labels["module"] == "edgeHub"  # 10→11→12, reset, 1→2


def test_a_failing_rule_leaves_its_alerts_alone(fleet, metrics, tmp_path):
    rule = {"name": "Hot", "kind": "threshold", "metric": "temperature_celsius", "threshold": 90}
    metrics.write([sample("temperature_celsius", "s1-dev00000", 95)])
    summary, alerts = run(fleet, metrics, tmp_path, [rule])
    assert summary.fired == 1
    metrics.close()  # the store goes away
    summary, alerts = run(fleet, metrics, tmp_path, [rule], now=NOW + timedelta(minutes=1))
    assert "Hot" in summary.rule_errors
    assert ("Hot", "s1-dev00000", "firing") in alerts
