"""The analysis cycle on a simulated fleet: a thermal runaway is foreseen before the trip point."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select

from fleetwatch.analysis import service
from fleetwatch.analysis.models import (
    AnalysisRun,
    AnomalyEpisode,
    DetectorState,
    DeviceHealth,
    Forecast,
)
from fleetwatch.db import session_scope
from tests.analysis.conftest import Pipeline, build_pipeline, inject_fan_failure


def _status_timeline(
    p: Pipeline, device: str, minutes: int, computed: list[dict[str, datetime]] | None = None
) -> list[tuple[float, str, str, list[str]]]:
    """(time, status, top signal details, forecast limits) of one device after each cycle;
    ``computed`` gets, per cycle, when each stored forecast was last computed."""
    timeline = []
    for _ in range(minutes // 5):
        p.run(5)
        with p.sessions() as db:
            row = db.get(DeviceHealth, device)
            details = " ".join(str(s.get("detail")) for s in row.top_signals) if row else ""
            stored = db.scalars(select(Forecast).where(Forecast.device_id == device)).all()
            limits = [f"{f.metric}:{f.limit_name}" for f in stored]
            timeline.append((p.sim.t, row.status if row else "none", details, limits))
            if computed is not None:
                computed.append({f"{f.series_key}:{f.limit_name}": f.computed_at for f in stored})
    return timeline


def test_thermal_runaway_is_flagged_before_the_trip_point(pipeline: Pipeline) -> None:
    p = pipeline
    p.run(60)  # an hour of normal operation first
    device = inject_fan_failure(p, after_s=600)
    computed: list[dict[str, datetime]] = []
    timeline = _status_timeline(p, device, 240, computed)
    truth = next(g for g in p.sim.ground_truth() if g.device == device)
    assert truth.crossed_at is not None, "the simulated runaway must reach its trip point"
    flagged = [entry for entry in timeline if entry[1] in ("warning", "critical")]
    assert flagged, timeline
    first_t, _status, details, _limits = flagged[0]
    lead_s = truth.crossed_at - first_t
    assert lead_s >= 15 * 60, f"flagged only {lead_s / 60:.0f} min before the crossing"
    # The reason is given in words: the fan no longer turns as fast as its duty cycle asks,
    # which shows minutes after it fails, long before the temperature gets near a trip point.
    assert "fan_speed_rpm/fan0" in details and "normal speed" in details, details
    # The forecast of the trip point follows, stored before the crossing.
    before = [entry for entry in timeline if entry[0] <= truth.crossed_at]
    assert any("temperature_celsius:trip_point_0" in entry[3] for entry in before), timeline
    # A forecast still expected at the next cycle is the same row, updated in place.
    updated = [
        key
        for earlier, later in itertools.pairwise(computed)
        for key in earlier.keys() & later.keys()
        if later[key] > earlier[key]
    ]
    assert updated, computed


def test_healthy_fleet_stays_mostly_quiet(pipeline: Pipeline) -> None:
    pipeline.run(120)
    with pipeline.sessions() as db:
        rows = db.scalars(select(DeviceHealth)).all()
    assert len(rows) == len(pipeline.sim.devices)
    flagged = [r.device_id for r in rows if r.status != "ok"]
    assert len(flagged) <= len(rows) // 8, flagged
    assert all(0.0 <= r.risk_1h <= 1.0 and 0.0 <= r.risk_24h <= 1.0 for r in rows)


def test_a_redelivered_shard_does_nothing_twice(pipeline: Pipeline) -> None:
    p = pipeline
    p.run(30)
    p.sim.step(30)
    p.store.write(p.sim.samples())
    first = p.cycle(cycle_id="c-1")
    episodes, runs = p.count(AnomalyEpisode), p.count(AnalysisRun)
    again = p.cycle(cycle_id="c-1")
    assert all(not s.skipped for s in first) and all(s.skipped for s in again)
    assert p.count(AnalysisRun) == runs and p.count(AnomalyEpisode) == episodes


def test_a_worker_killed_mid_cycle_leaves_nothing_and_the_retry_completes(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    p.run(30)
    p.sim.step(30)
    p.store.write(p.sim.samples())
    now_ms = int(p.sim.t * 1000)
    with p.sessions() as db:
        before = db.get(DetectorState, "0/2")
        before_until = before.processed_until_ms if before else None
    # The process dies after the analysis, before its transaction commits.
    db = p.sessions()
    service.run_shard(
        db=db,
        store=p.store,
        settings=p.settings.analysis,
        shard=0,
        n_shards=2,
        cycle_id="crash",
        now_ms=now_ms,
    )
    db.rollback()
    db.close()
    with p.sessions() as db:
        assert db.get(AnalysisRun, ("crash", "0/2")) is None
        row = db.get(DetectorState, "0/2")
        assert (row.processed_until_ms if row else None) == before_until
    # The redelivered task runs the shard again from the committed state, once.
    with session_scope(p.sessions) as db:
        retry = service.run_shard(
            db=db,
            store=p.store,
            settings=p.settings.analysis,
            shard=0,
            n_shards=2,
            cycle_id="crash",
            now_ms=now_ms,
        )
    assert not retry.skipped and retry.points > 0
    with p.sessions() as db:
        assert db.get(AnalysisRun, ("crash", "0/2")) is not None
        assert db.get(DetectorState, "0/2").processed_until_ms > (before_until or 0)


def test_state_resumes_after_a_restart(tmp_path: Path) -> None:
    """A worker that restarts (no in-process cache) continues from the persisted state and
    reaches the same results as one that never stopped."""
    kept = build_pipeline(tmp_path / "kept", seed=9)
    restarted = build_pipeline(tmp_path / "restarted", seed=9)
    for _ in range(8):
        for p, clear in ((kept, False), (restarted, True)):
            if clear:
                service._STATE_CACHE.clear()
                service._LIMITS_CACHE.clear()
            else:
                service._LIMITS_CACHE.clear()
            p.run(10, cycle_minutes=10)
    with kept.sessions() as a, restarted.sessions() as b:
        risks_a = {r.device_id: r.risk_24h for r in a.scalars(select(DeviceHealth))}
        risks_b = {r.device_id: r.risk_24h for r in b.scalars(select(DeviceHealth))}
        state_a = a.get(DetectorState, "0/2")
        state_b = b.get(DetectorState, "0/2")
    assert risks_a.keys() == risks_b.keys() and risks_a
    np.testing.assert_allclose(
        [risks_a[k] for k in sorted(risks_a)], [risks_b[k] for k in sorted(risks_b)], atol=0.02
    )
    assert state_a.processed_until_ms == state_b.processed_until_ms


def test_a_site_wide_event_opens_and_closes_every_episode(pipeline: Pipeline) -> None:
    """Many episodes at once (a whole site jumps, then recovers) are kept one per series."""
    p = pipeline
    p.run(60)
    site = p.sim.devices[0].site
    for minute in range(25):
        for _ in range(int(60 / p.sim.config.step_s)):
            p.sim.step(1)
            samples = p.sim.samples()
            if 5 <= minute < 8:
                samples = [
                    dataclasses.replace(s, value=s.value * 5 + 50)
                    if s.labels.get("site") == site
                    else s
                    for s in samples
                ]
            p.store.write(samples)
        if minute % 3 == 2:
            p.cycle()
    with p.sessions() as db:
        episodes = db.scalars(select(AnomalyEpisode)).all()
    on_site = [e for e in episodes if e.labels.get("site") == site]
    assert len(on_site) >= 20
    # One episode per series, each closed once the site is back to normal.
    assert len({e.series_key for e in on_site}) == len(on_site)
    assert all(e.ended_at is not None and e.peak_score >= 0.9 for e in on_site)


def test_the_default_anomaly_rule_fires_on_the_analysis_own_episodes(pipeline: Pipeline) -> None:
    # The alerting rule reads the episodes this analysis writes: its level must be one that
    # their scores (in [0, 1]) reach and hold while a device runs away.
    from datetime import UTC, datetime

    from fleetwatch.alerting import service as alerting
    from fleetwatch.alerting.ruleset import DEFAULT_RULES, parse_config, read_file

    raw = read_file(DEFAULT_RULES)
    rules = [r for r in raw["rules"] if r["name"] in ("AnomalousBehaviour", "PeerOutlier")]
    config = parse_config({**raw, "rules": rules})
    p = pipeline
    p.run(60)
    device = inject_fan_failure(p, after_s=600)
    firing: set[tuple[str, str]] = set()
    for _ in range(12):
        p.run(5)
        now = datetime.fromtimestamp(p.sim.t, tz=UTC)
        with p.sessions() as db:
            alerting.evaluate(db=db, store=p.store, now=now, settings=p.settings, config=config)
            db.commit()
            firing |= {
                (a.rule, a.device, str(a.labels.get("metric")))
                for a in alerting.list_alerts(db=db)
                if a.state == "firing"
            }
    assert any(r == "AnomalousBehaviour" and d == device for r, d, _ in firing), firing
