"""`fleetwatch evaluate` on a small fleet: the scoring of detections against ground truth."""

from __future__ import annotations

from pathlib import Path

from fleetwatch.analysis.evaluate import EvaluationConfig, FaultOutcome, _episode_starts, evaluate


def test_a_small_evaluation_detects_a_stopped_fan_and_a_filling_disk(tmp_path: Path) -> None:
    config = EvaluationConfig(
        seeds=(7,), devices=12, hours=3.5, cycle_minutes=2.0, kinds=("fan_failure", "disk_fill")
    )
    result = evaluate(config, tmp_path)
    faults = {f["kind"]: f for f in result["faults"]}
    assert set(faults) == {"fan_failure", "disk_fill"}
    assert faults["fan_failure"]["detected"], result
    assert result["per_kind"]["fan_failure"]["faults"] == 1
    assert result["alert_episodes"] >= 1
    assert 0.0 <= result["alert_precision"] <= 1.0
    assert result["cycle_minutes"] == 2.0
    # every false alert names a device and why it was flagged
    assert all(a["device"] and a["reason"] for a in result["false_alerts"])
    # the false anomaly episodes, broken down by the series that made them, add up
    by_series = result["false_anomaly_episodes_per_device_day_by_series"]
    assert all(" (anomaly)" in name or " (peer)" in name for name in by_series)
    total = result["false_anomaly_episodes_per_device_day"]
    assert abs(sum(by_series.values()) - total) <= 0.0005 * (len(by_series) + 1)  # rounding


def test_detection_needs_a_flag_before_the_crossing() -> None:
    on_time = FaultOutcome(1, "dust", "d", start=0.0, crossed_at=3600.0, first_flag=1800.0)
    late = FaultOutcome(1, "dust", "d", start=0.0, crossed_at=3600.0, first_flag=3700.0)
    state = FaultOutcome(1, "crash_loop", "d", start=0.0, crossed_at=600.0, first_flag=1200.0)
    assert on_time.detected and on_time.lead_s == 1800.0
    assert not late.detected and late.lead_s is None
    assert state.detected and state.lead_s is None  # within 15 min of the break, no lead


def test_flag_runs_with_short_gaps_are_one_alert() -> None:
    timeline = [(0.0, False), (60.0, True), (120.0, False), (600.0, True), (5000.0, True)]
    assert _episode_starts(timeline) == [60.0, 5000.0]
