"""The demo stage (dry-run, lead times against ground truth) and the pure gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from fleetwatch.actions import gate
from fleetwatch.actions.config import ActionsSettings, Budget
from fleetwatch.actions.demo import ActionsStage
from fleetwatch.actions.policy import Proposal
from fleetwatch.settings import load_settings
from fleetwatch.simulate.faults import GroundTruth
from tests.actions.conftest import T0, add_device, later


def test_demo_stage_dry_run_reports_lead_time(db: Session, db_factory: Any, tmp_path: Any) -> None:
    add_device(db, "orin-1", forecast_s=5400)  # crossing forecast 90 min ahead
    add_device(db, "orin-2")
    add_device(db, "orin-3")
    add_device(db, "orin-4")
    db.commit()
    truth = [
        GroundTruth(
            kind="thermal_runaway",
            device="orin-1",
            site="plant-a",
            start=T0.timestamp(),
            severity=0.7,
            threshold=95.0,
            comparison=">=",
            series=[],
            expected_failure_at=later(6000).timestamp(),
        ),
        {"device": "orin-2", "expected_failure_at": None, "crossed_at": None},
    ]
    stage = ActionsStage(load_settings(data_dir=tmp_path), db_factory, ground_truth=lambda: truth)
    stage.start()
    first = stage.tick(T0)
    stage.tick(later(60))
    report = stage.report()
    stage.stop()
    assert first["planned"] == 1 and first["applied"] == 0
    assert report["mode"] == "dry-run"
    assert (report["actions_proposed"], report["actions_applied"]) == (1, 0)
    (action,) = report["actions"]
    assert (action["kind"], action["device"], action["policy"]) == (
        "cordon",
        "orin-1",
        "cordon-on-forecast-crossing",
    )
    assert action["lead_time_s"] == 6000.0
    assert action["forecast_lead_time_s"] == 5400.0
    assert action["reasons"][0].startswith("temperature_celsius forecast to cross trip_point_0")


def _ctx(**kw: Any) -> gate.GateContext:
    settings = ActionsSettings(**kw)
    site = gate.SiteGate("s", 10, settings.budget)
    return gate.GateContext(T0, settings, {"s": site}, {})


def _p(kind: str, device: str = "d1") -> Proposal:
    return Proposal("p", kind, device, "s", ("because",))  # type: ignore[arg-type]


def test_budget_counts_and_percentages() -> None:
    assert gate.resolve_count("25%", 10, round_up=False) == 2
    assert gate.resolve_count("25%", 10, round_up=True) == 3
    assert gate.resolve_count("3", 10, round_up=False) == 3
    strict = _ctx(budget=Budget(max_unhealthy="20%", min_healthy="100%"))
    first = gate.decide(strict, _p("cordon", "d1"))
    assert first.verdict == "refuse"
    assert first.reasons == ("budget: 9 of 10 devices would stay undisrupted, min_healthy is 10",)
    ctx = _ctx(budget=Budget(max_unhealthy="20%", min_healthy="8"))
    assert gate.decide(ctx, _p("cordon", "d1")).allowed
    ctx.account(_p("cordon", "d1"))
    assert gate.decide(ctx, _p("cordon", "d2")).allowed
    ctx.account(_p("cordon", "d2"))
    third = gate.decide(ctx, _p("cordon", "d3"))
    assert third.verdict == "refuse"
    assert third.reasons[0].startswith("budget: site s allows 2 disrupted device(s)")
    # Restorative and non-disruptive kinds do not use the budget.
    assert gate.decide(ctx, _p("hold_upgrade", "d3")).allowed


def test_drain_concurrency_and_buffer() -> None:
    ctx = _ctx(budget=Budget(max_unhealthy="5"), drain_buffer_s=600)
    assert gate.decide(ctx, _p("drain", "d1")).allowed
    ctx.account(_p("drain", "d1"))
    busy = gate.decide(ctx, _p("drain", "d2"))
    assert busy.verdict == "refuse" and any(r.startswith("drain concurrency") for r in busy.reasons)
    ctx.sites["s"].draining.clear()  # the first drain finished
    ctx.now = T0 + timedelta(seconds=300)
    wait = gate.decide(ctx, _p("drain", "d2"))
    assert [r.split(":")[0] for r in wait.reasons] == ["drain buffer"]
    ctx.now = T0 + timedelta(seconds=600)
    assert gate.decide(ctx, _p("drain", "d2")).allowed


def test_pauses_storms_and_hold_expiry() -> None:
    ctx = _ctx(storm_cooldown_s=600)
    ctx.global_pauses.append("freeze")
    ctx.sites["s"].pauses.append("site-work")
    paused = gate.decide(ctx, _p("hold_upgrade"))
    assert paused.reasons == ("paused by 'freeze' (global)", "paused by 'site-work' (site s)")
    # The maximum hold time is kept even under a pause.
    assert gate.decide(ctx, _p("release_hold"), hold_expiry=True).allowed
    calm = _ctx(storm_cooldown_s=600)
    calm.sites["s"].storm_cleared_at = T0 - timedelta(seconds=100)
    cooling = gate.decide(calm, _p("cordon"))
    assert cooling.reasons[0].startswith("storm cooldown until")
    check = gate.check_storm(calm.sites["s"], {"a", "b", "c", "d", "e"}, calm.settings, T0)
    assert check.active and check.started and check.flagged == 5
    small = gate.check_storm(calm.sites["s"], {"a", "b"}, calm.settings, T0)
    assert not small.active  # under storm_min_devices


def test_a_condition_that_would_match_every_device_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    from fleetwatch.actions.config import PolicyCondition

    for bad in (
        {},
        {"recovered": False},
        {"forecast_metric": "temperature_*"},
        {"risk_1h_gte": None},
    ):
        with pytest.raises(ValidationError):
            PolicyCondition.model_validate(bad)
    ok = PolicyCondition.model_validate({"forecast_within_s": 600, "forecast_metric": "temp*"})
    assert ok.forecast_metric == "temp*"
