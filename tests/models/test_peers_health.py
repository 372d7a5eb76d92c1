from __future__ import annotations

import numpy as np
import pytest

from models import forecast_pressure, health_by_horizon, health_scores, peer_scores


def test_peer_comparison_flags_the_hot_sibling() -> None:
    rng = np.random.default_rng(0)
    temps = np.concatenate([60 + rng.normal(0, 1, 8), 40 + rng.normal(0, 1, 6)])
    temps[3] = 75.0  # 15 °C hotter than its siblings
    cohorts = ["orin-nano/36.3/site-a"] * 8 + ["coral-dev/5.1/site-b"] * 6
    result = peer_scores(temps, cohorts)
    assert result.score[3] > 0.95
    assert result.z[3] > 5
    others = np.delete(result.score, 3)
    assert others.max() < 0.2
    assert result.scored.all()
    assert result.cohort_size.tolist() == [8.0] * 8 + [6.0] * 6


def test_tiny_cohorts_and_missing_values_are_not_scored() -> None:
    result = peer_scores([50.0, 90.0, 51.0, np.nan, 52.0], ["a", "a", "b", "b", "b"])
    assert not result.scored.any()
    assert (result.score == 0).all()
    assert np.isnan(result.z).all()


def test_load_explains_heat_and_is_regressed_out() -> None:
    rng = np.random.default_rng(1)
    load = rng.uniform(10, 60, 12)
    temps = 40 + 0.3 * load + rng.normal(0, 0.5, 12)
    load[0], temps[0] = 100.0, 40 + 0.3 * 100  # hot because it is busy: expected
    temps[1] += 10.0  # hot for no reason
    result = peer_scores(temps, ["jetson"] * 12, covariate=load)
    assert result.score[0] < 0.2
    assert result.score[1] > 0.9
    without = peer_scores(temps, ["jetson"] * 12)
    # Without the covariate, the busy device looks far hotter than its siblings.
    assert without.z[0] > result.z[0] + 2.5


def test_forecast_pressure_counts_crossings_inside_the_horizon() -> None:
    pressure = forecast_pressure([600.0, 3600.0, 7200.0, np.inf, np.nan], 3600.0)
    assert pressure.tolist() == pytest.approx([1.0, 1.0, np.exp(-1.0), 0.0, 0.0])


def test_health_ranks_the_degrading_device_and_names_why() -> None:
    n = 6
    signals = {
        "anomaly:gpu_temp": np.array([0.1, 0.0, 0.05, 0.0, 0.0, 0.7]),
        "peer:gpu_temp": np.array([0.0, 0.1, 0.0, 0.0, 0.0, 0.9]),
        "forecast:gpu_temp": forecast_pressure(
            np.array([np.inf, np.inf, 4e5, np.inf, np.inf, 1800.0]), 3600.0
        ),
        "forecast:disk": np.zeros(n),
        "component_broken": np.array([0, 0, 0, 0, 1, 0]),
    }
    health = health_scores(signals)
    assert ((health.risk >= 0) & (health.risk <= 1)).all()
    order = np.argsort(-health.risk)
    assert order[0] == 5  # the one heading for its trip point
    assert order[1] == 4  # a broken component
    assert health.top_signals[5][0][0] == "forecast:gpu_temp"
    assert [name for name, _ in health.top_signals[4]] == ["component_broken"]
    assert health.risk[3] == 0.0 and health.top_signals[3] == []
    # Contributions add up to the risk.
    total = sum(health.contributions.values())
    np.testing.assert_allclose(total, health.risk)
    assert health.to_dict()["top_signals"][5][0][0] == "forecast:gpu_temp"


def test_risk_for_the_next_hour_and_the_next_day() -> None:
    by_horizon = health_by_horizon(
        anomaly={"gpu_temp": [0.0, 0.0, 0.0]},
        time_to_threshold={"disk": [np.inf, 5 * 3600.0, 600.0]},
        states={"device_unhealthy": [0, 0, 0]},
    )
    hour, day = by_horizon["next_hour"], by_horizon["next_day"]
    assert hour.risk[0] == 0.0 and day.risk[0] == 0.0
    # A disk full in five hours barely matters for the next hour, fully for the next day.
    assert hour.risk[1] < 0.05 < 0.85 < day.risk[1]
    assert hour.risk[2] == pytest.approx(day.risk[2]) and hour.risk[2] > 0.85
    assert day.top_signals[1][0][0] == "forecast:disk"
