"""``fleetwatch bench alerts``: an alert storm and rule evaluation over a 10,000-device fleet.

Storm: every device of one 10,000-device site goes silent at once. Evaluation raises the site
outage and 10,000 DeviceSilent alerts; dispatch (after group_wait) must produce one
notification per group, not one per device. ``storm_seconds`` is the wall time of that
evaluation plus that dispatch, delivery to a loopback receiver included. The same storm is
replayed without inhibition, where the 10,000 device alerts form one group of their own.

Rule evaluation: the default rule set over a 10,000-device fleet spread over 20 sites, with
latest metrics for every device, a restart counter window, anomaly episodes and forecasts.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from benchmarks._common import emit
from fleetwatch.alerting import service
from fleetwatch.alerting.demo import LocalReceiver
from fleetwatch.alerting.models import Alert, AlertGroup, Notification
from fleetwatch.alerting.ruleset import DEFAULT_RULES, parse_config, read_file
from fleetwatch.analysis.models import AnomalyEpisode, Forecast
from fleetwatch.db import make_engine, migrations, session_factory
from fleetwatch.fleet.models import Device, Site
from fleetwatch.plugins import PluginRegistry
from fleetwatch.settings import load_settings
from fleetwatch.store.sqlite import SQLiteStore
from fleetwatch.telemetry import make_sample

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def seed_devices(db: Any, sites: dict[str, int], last_seen: datetime) -> list[tuple[str, str]]:
    db.execute(insert(Site), [{"id": s, "name": s, "created_at": last_seen} for s in sites])
    rows = [
        {
            "id": f"{site}-{i:05d}",
            "site_id": site,
            "hardware_model": "jetson-orin-nx",
            "labels": {},
            "registered_at": last_seen,
            "updated_at": last_seen,
            "last_seen_at": last_seen,
        }
        for site, n in sites.items()
        for i in range(n)
    ]
    for start in range(0, len(rows), 1000):
        db.execute(insert(Device), rows[start : start + 1000])
    db.commit()
    return [(r["id"], r["site_id"]) for r in rows]


def config_for(receiver_url: str, *, inhibit: bool) -> dict[str, Any]:
    raw = read_file(DEFAULT_RULES)
    raw["receivers"] = [
        {
            "name": "ops",
            "notifier": "webhook",
            "max_alerts": 200,
            "config": {"url": f"{receiver_url}/storm", "secret": "bench-signing-key-0000"},
        }
    ]
    raw["route"] = {**raw["route"], "receiver": "ops"}
    if not inhibit:
        raw["inhibit_rules"] = []
    return raw


def storm(workdir: Path, db_url: str | None, *, inhibit: bool, devices: int) -> dict[str, Any]:
    url = db_url or f"sqlite:///{workdir / ('storm-inhibit' if inhibit else 'storm')}.sqlite3"
    migrations.upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    store = SQLiteStore(workdir / f"storm-metrics-{inhibit}.sqlite3")
    with LocalReceiver() as receiver:
        settings = load_settings(
            data_dir=workdir, db={"url": url}, alerting={"allowed_http_hosts": ["127.0.0.1"]}
        )
        config = parse_config(config_for(receiver.url, inhibit=inhibit))
        registry = PluginRegistry.from_entry_points(["fleetwatch.notifiers"])
        with factory() as db:
            seed_devices(db, {"storm-site": devices, "calm-site": 50}, NOW - timedelta(hours=1))
            db.execute(
                Device.__table__.update()
                .where(Device.site_id == "calm-site")
                .values(last_seen_at=NOW + timedelta(hours=1))
            )
            db.commit()
        print(f"  storm ({'with' if inhibit else 'without'} inhibition): {devices} silent devices")
        httpx.Client().close()  # a running worker has its HTTP stack imported already
        started, cpu_started = time.perf_counter(), time.process_time()
        with factory() as db:
            ev = service.evaluate(db=db, store=store, now=NOW, settings=settings, config=config)
            db.commit()
        evaluated = time.perf_counter()
        # dispatch runs every few seconds: the first run opens the groups, the one after
        # group_wait flushes them
        flush_at = NOW + timedelta(seconds=config.route.group_wait_s or 30)
        for at in (NOW, flush_at):
            with factory() as db:
                service.dispatch(db=db, now=at, settings=settings, registry=registry, config=config)
        finished, cpu = time.perf_counter(), time.process_time() - cpu_started
        with factory() as db:
            firing = db.scalar(
                select(func.count()).select_from(Alert).where(Alert.state == "firing")
            )
            groups = db.scalar(select(func.count()).select_from(AlertGroup))
            notes = db.scalar(select(func.count()).select_from(Notification))
        received = len(receiver.received)
    store.close()
    engine.dispose()
    print(
        f"    evaluate {evaluated - started:.2f}s ({ev.fired} fired), dispatch "
        f"{finished - evaluated:.2f}s: {groups} group(s), {notes} notification(s), "
        f"{received} request(s) received"
    )
    return {
        "alerts": int(firing or 0),
        "notifications": int(notes or 0),
        "received": received,
        "groups": int(groups or 0),
        "evaluate_seconds": round(evaluated - started, 3),
        "dispatch_seconds": round(finished - evaluated, 3),
        "seconds": round(finished - started, 3),
        "cpu_seconds": round(cpu, 3),
    }


def fleet_metrics(devices: list[tuple[str, str]], rng: random.Random) -> list[Any]:
    samples = []
    for device, site in devices:
        base = {"device": device, "site": site}
        hot = rng.random() < 0.01
        samples.append(
            make_sample("temperature_celsius", {**base, "sensor": "tj"}, 95 if hot else 55, NOW)
        )
        broken = rng.random() < 0.005
        for state, on in (("RUNNING", not broken), ("BROKEN", broken)):
            labels = {**base, "component": "com.example.Infer", "state": state}
            samples.append(make_sample("component_state", labels, 1 if on else 0, NOW))
        status = "FAILED" if rng.random() < 0.005 else "SUCCEEDED"
        samples.append(
            make_sample(
                "deployment_status", {**base, "deployment": "d-7", "status": status}, 1, NOW
            )
        )
        samples.append(make_sample("device_healthy", base, 0 if rng.random() < 0.005 else 1, NOW))
        looping = rng.random() < 0.01
        for minute in range(5):
            count = minute * 2 if looping else 3
            at = NOW - timedelta(minutes=10 - 2 * minute)
            samples.append(
                make_sample("module_restarts_total", {**base, "module": "edgeHub"}, count, at)
            )
    return samples


def evaluation(workdir: Path, db_url: str | None, devices: int) -> dict[str, Any]:
    url = db_url or f"sqlite:///{workdir / 'fleet.sqlite3'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    store = SQLiteStore(workdir / "fleet-metrics.sqlite3")
    rng = random.Random(7)
    per_site = devices // 20
    sites = {f"site-{i:02d}": per_site for i in range(20)}
    with factory() as db:
        fleet = seed_devices(db, sites, NOW - timedelta(seconds=30))
        silent = [d for d, _ in fleet if rng.random() < 0.01]
        db.execute(
            Device.__table__.update()
            .where(Device.id.in_(silent[:900]))
            .values(last_seen_at=NOW - timedelta(minutes=20))
        )
        episodes, forecasts = [], []
        for device, _site in fleet:
            key = f"temperature_celsius|{device}"
            if rng.random() < 0.03:
                episodes.append(
                    {
                        "device_id": device,
                        "metric": "power_watts",
                        "labels": {},
                        "series_key": key,
                        "kind": rng.choice(["anomaly", "peer"]),
                        "ended_at": None,
                        "started_at": NOW - timedelta(minutes=30),
                        "peak_score": 9.0,
                        "last_score": rng.uniform(2, 9),
                    }
                )
            ttl = rng.uniform(600, 200_000)
            forecasts.append(
                {
                    "device_id": device,
                    "metric": "temperature_celsius",
                    "labels": {"sensor": "tj"},
                    "series_key": key,
                    "limit_name": "trip_point_0",
                    "limit_value": 94.8,
                    "computed_at": NOW,
                    "will_cross": True,
                    "time_to_threshold_s": ttl,
                    "lower_s": ttl * 0.7,
                    "upper_s": ttl * 1.4,
                }
            )
        for start in range(0, len(forecasts), 1000):
            db.execute(insert(Forecast), forecasts[start : start + 1000])
        if episodes:
            db.execute(insert(AnomalyEpisode), episodes)
        db.commit()
    samples = fleet_metrics(fleet, rng)
    print(f"  fleet: {len(fleet)} devices, {len(samples)} samples, {len(episodes)} episodes")
    store.write(samples)
    settings = load_settings(data_dir=workdir, db={"url": url})
    config = parse_config(read_file(DEFAULT_RULES))
    started = time.perf_counter()
    with factory() as db:
        ev = service.evaluate(db=db, store=store, now=NOW, settings=settings, config=config)
        db.commit()
    elapsed = time.perf_counter() - started
    print(f"    evaluate {elapsed:.2f}s: {ev.findings} findings, by rule {ev.fired_by_rule}")
    if ev.rule_errors:
        print(f"    rule errors: {ev.rule_errors}")
    store.close()
    engine.dispose()
    return {"seconds": round(elapsed, 3), "findings": ev.findings, "rules": ev.rules_evaluated}


def main(args: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="fleetwatch bench alerts")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--db-url", default=None, help="state DB (default: SQLite in a temp dir)")
    opts = parser.parse_args(args)
    if opts.db_url:
        print("  note: --db-url must name an empty database per run phase; using it for the storm")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        main_storm = storm(work, opts.db_url, inhibit=True, devices=opts.devices)
        flat_storm = storm(work, None, inhibit=False, devices=opts.devices)
        rules = evaluation(work, None, opts.devices)
    return emit(
        {
            "benchmark": "alerts",
            "devices": opts.devices,
            "storm_alerts": main_storm["alerts"],
            "storm_notifications": main_storm["notifications"],
            "storm_groups": main_storm["groups"],
            "storm_seconds": main_storm["seconds"],
            "storm_evaluate_seconds": main_storm["evaluate_seconds"],
            "storm_dispatch_seconds": main_storm["dispatch_seconds"],
            # CPU time of this process for the same work: wall time on a shared, loaded
            # machine also counts waiting for the CPU
            "storm_cpu_seconds": main_storm["cpu_seconds"],
            "storm_uninhibited_notifications": flat_storm["notifications"],
            "storm_uninhibited_groups": flat_storm["groups"],
            "storm_uninhibited_seconds": flat_storm["seconds"],
            "rule_eval_seconds": rules["seconds"],
            "rule_eval_findings": rules["findings"],
            "rule_eval_rules": rules["rules"],
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    )
