from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import (
    forecast_deep_dive,
    forecast_time_to_threshold,
    predict_linear_time_to_threshold,
)
from models.evaluation import compare_with_predict_linear, evaluate_time_to_threshold, simulate

MIN = 60.0


def test_linear_ramp_with_noise_crosses_when_expected() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(300)
    # 0.05 units per minute, limit 30 units above the last true value: 600 min ahead.
    values = 10 + 0.05 * t + rng.normal(0, 0.2, (100, t.size))
    limit = 10 + 0.05 * 299 + 30
    result = forecast_time_to_threshold(values, limit)
    minutes = result.time_to_threshold / MIN
    assert np.median(np.abs(minutes - 600)) < 60
    inside = (result.lower <= 600 * MIN) & (result.upper >= 600 * MIN)
    assert inside.mean() > 0.8
    assert result.crossing_expected.all()
    assert np.allclose(result.slope * MIN, 0.05, atol=0.02)


def test_thermal_approach_to_a_trip_point_uses_the_damped_path() -> None:
    # First-order rise towards 95 °C with a 100-minute time constant; trip point 85 °C.
    rng = np.random.default_rng(1)
    t = np.arange(100.0)
    values = 95 - 45 * np.exp(-t / 100) + rng.normal(0, 0.3, (200, t.size))
    truth = -100 * np.log(10 / 45) - 99  # minutes from the last point to 85 °C: 51.4
    ours = forecast_time_to_threshold(values, 85.0).time_to_threshold / MIN
    linear = predict_linear_time_to_threshold(values, 85.0) / MIN
    ours_error = np.median(np.abs(ours - truth))
    linear_error = np.median(np.abs(linear - truth))
    assert ours_error < 10
    assert ours_error < linear_error / 2
    assert linear_error > 15  # predict_linear calls it far too early on the concave rise


def test_disk_fill_in_bytes_with_a_floor_of_free_space() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(240.0)
    capacity = 500e9
    used = 300e9 + 50e6 * t + rng.normal(0, 20e6, (50, t.size))
    full = forecast_time_to_threshold(used, capacity).time_to_threshold / MIN
    truth = (capacity - 300e9 - 50e6 * 239) / 50e6
    assert np.median(np.abs(full - truth)) < 0.05 * truth
    free = capacity - used
    empty = forecast_time_to_threshold(free, 0.0, rising=False).time_to_threshold / MIN
    np.testing.assert_allclose(empty, full, rtol=1e-6)


@pytest.mark.parametrize(
    "shape",
    ["flat", "decreasing", "levels_off_below"],
)
def test_no_crossing_expected(shape: str) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(200.0)
    noise = rng.normal(0, 0.3, (100, t.size))
    if shape == "flat":
        values = 50 + noise
    elif shape == "decreasing":
        values = 70 - 0.05 * t + noise
    else:
        # Still rising fast over the window, but settling at 80 °C: trip point 85 °C.
        values = 80 - 30 * np.exp(-t[:120] / 40) + noise[:, :120]
    result = forecast_time_to_threshold(values, 85.0)
    assert (~result.crossing_expected).mean() > 0.95
    # The late end of the interval never reaches the limit: no trend worth the name.
    assert np.isinf(result.upper).mean() > 0.95
    assert not result.will_cross_within(7200).any()


def test_already_crossed_and_missing_data() -> None:
    values = np.vstack([np.full(120, 90.0), np.full(120, np.nan), np.linspace(0, 10, 120)])
    values[2, ::3] = np.nan
    result = forecast_time_to_threshold(values, 85.0)
    assert result.already_crossed[0] and result.time_to_threshold[0] == 0.0
    assert np.isinf(result.time_to_threshold[1]) and not result.crossing_expected[1]
    expected = (85.0 - 10.0) / (10.0 / 119) * MIN
    assert result.time_to_threshold[2] == pytest.approx(expected, rel=1e-6)


def test_predict_linear_is_prometheus_semantics() -> None:
    line = 20 + 0.1 * np.arange(120.0)  # last value 31.9
    assert predict_linear_time_to_threshold(line, 40.0)[0] == pytest.approx(81 * MIN)
    assert np.isinf(predict_linear_time_to_threshold(line[::-1], 40.0)[0])
    assert predict_linear_time_to_threshold(line, 30.0)[0] == 0.0


def test_forecast_beats_predict_linear_on_simulated_degradations() -> None:
    result = compare_with_predict_linear(n_per_kind=100, seed=0)
    assert result["forecast_median_ae_minutes"] < result["predict_linear_median_ae_minutes"]
    assert result["false_cross_rate"] < result["predict_linear_false_cross_rate"]
    for lead in (120, 60, 30, 15):
        ours = result[f"lead_{lead}_forecast_median_ae_minutes"]
        assert ours < result[f"lead_{lead}_predict_linear_median_ae_minutes"]
    # The figures this seed gives today, so a regression shows up as a change.
    assert result["forecast_median_ae_minutes"] < 6.5
    assert result["predict_linear_median_ae_minutes"] > 6.5


def test_simulated_crossings_are_where_the_limit_is_reached() -> None:
    scenario = simulate("disk_fill", 20, degrade=True, seed=5)
    assert (scenario.crossing >= 300).all()
    evaluation = evaluate_time_to_threshold(scenario, leads=(30,))
    assert np.median(evaluation.errors[30]) < 10


def test_deep_dive_gives_a_path_and_band_reaching_the_limit() -> None:
    rng = np.random.default_rng(6)
    index = pd.date_range("2026-01-01", periods=300, freq="1min", tz="UTC")
    series = pd.Series(40 + 0.05 * np.arange(300) + rng.normal(0, 0.2, 300), index=index)
    deep = forecast_deep_dive(series, threshold=60.0, horizon_points=600)
    assert len(deep.mean) == 600
    assert (deep.lower <= deep.mean).all() and (deep.mean <= deep.upper).all()
    assert deep.mean.index[0] == index[-1] + pd.Timedelta(minutes=1)
    assert deep.earliest_seconds <= deep.time_to_threshold_seconds
    assert deep.time_to_threshold_seconds < float("inf")
    assert deep.to_dict()["mean"][0] == pytest.approx(deep.mean.iloc[0])


def _thermal(load: np.ndarray, drift_per_min: float = 0.0, seed: int = 5) -> np.ndarray:
    """A die following ``35 + 2.5 °C/W * power`` with a 4-minute lag, plus a slow drift."""
    rng = np.random.default_rng(seed)
    temp = np.empty_like(load)
    level = 35.0 + 2.5 * load[:, 0]
    for j in range(load.shape[1]):
        level = level + (35.0 + 2.5 * load[:, j] + drift_per_min * j - level) * (1 - np.exp(-0.25))
        temp[:, j] = level
    return temp + rng.normal(0, 0.2, temp.shape)


def test_a_rise_the_load_explains_is_not_a_trend_towards_the_trip_point() -> None:
    # Power steps from 6 W to 13 W half an hour ago: 17 °C up, and a line says 85 °C is near.
    load = np.full((20, 120), 6.0) + np.random.default_rng(2).normal(0, 0.3, (20, 120))
    load[:, 90:] += 7.0
    temp = _thermal(load)
    raw = forecast_time_to_threshold(temp, 85.0)
    adjusted = forecast_time_to_threshold(temp, 85.0, load=load)
    assert np.median(raw.time_to_threshold) < 3600  # the line alone is fooled: "within the hour"
    # held at its new load it levels off: nothing within the alerting horizons
    assert not adjusted.will_cross_within(7200).any()
    assert np.median(adjusted.time_to_threshold) > 4 * 3600


def test_a_drift_the_load_does_not_explain_still_crosses() -> None:
    # Dust: +0.15 °C per minute at a wandering load; 85 °C about 70 minutes after the window.
    rng = np.random.default_rng(3)
    load = 10.0 + np.cumsum(rng.normal(0, 0.15, (20, 120)), axis=1)
    temp = _thermal(load, drift_per_min=0.15)
    ahead = (85.0 - temp[:, -10:].mean(axis=1)) / 0.15
    result = forecast_time_to_threshold(temp, 85.0, load=load)
    assert result.crossing_expected.all()
    minutes = result.time_to_threshold / MIN
    assert np.median(np.abs(minutes - ahead)) < 0.35 * np.median(ahead)


def test_autocorrelated_wander_is_not_a_significant_trend() -> None:
    # Load that wanders with a quarter-hour memory and no trend at all: over two hours a line
    # through it often has a slope that white-noise standard errors call significant.
    rng = np.random.default_rng(4)
    n, points = 400, 120
    wander = np.zeros((n, points))
    for j in range(1, points):
        wander[:, j] = wander[:, j - 1] * np.exp(-1 / 15) + rng.normal(0, 1.0, n)
    result = forecast_time_to_threshold(60 + wander, 80.0)
    # with white-noise standard errors a third of these series "will cross" (0.34 measured)
    assert result.crossing_expected.mean() < 0.2
    assert result.will_cross_within(7200).mean() < 0.02
