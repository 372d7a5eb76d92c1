from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import score_series


def _index(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2026-03-01", periods=n, freq="5min", tz="UTC")


def _check(scores: np.ndarray, n: int) -> None:
    assert scores.shape == (n,)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_one_finite_score_per_point_and_a_spike_stands_out() -> None:
    rng = np.random.default_rng(0)
    values = 100 + 10 * np.sin(np.arange(2000) / 288 * 2 * np.pi) + rng.normal(0, 1, 2000)
    values[1500] += 25
    scores = score_series(pd.Series(values, index=_index(2000)))
    _check(scores, 2000)
    assert scores[1500] > 0.9
    assert np.delete(scores, 1500).max() < 0.5


@pytest.mark.parametrize(
    "values",
    [
        np.full(500, 3.0),
        np.arange(5.0),
        np.array([]),
        np.array([1e300, -1e300, 1e300, np.inf, -np.inf, np.nan] * 20),
        np.where(np.arange(300) % 7 == 0, np.nan, np.arange(300.0)),
    ],
    ids=["constant", "very_short", "empty", "huge", "nan"],
)
def test_nasty_inputs(values: np.ndarray) -> None:
    scores = score_series(pd.Series(values, index=_index(values.size)))
    _check(scores, values.size)


def test_constant_and_short_series_score_zero() -> None:
    assert score_series(pd.Series(np.full(500, 3.0), index=_index(500))).max() == 0.0
    assert score_series(pd.Series(np.arange(20.0), index=_index(20))).max() == 0.0


def test_irregular_sampling_and_a_long_gap() -> None:
    rng = np.random.default_rng(1)
    offsets = np.cumsum(rng.uniform(50, 70, 1000))
    offsets[700:] += 6 * 3600  # the device went dark for six hours
    index = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(offsets, unit="s")
    scores = score_series(pd.Series(20 + rng.normal(0, 0.5, 1000), index=index))
    _check(scores, 1000)
    assert scores[700] > 0.9  # the first point after the gap
    assert np.delete(scores, 700).max() < 0.5


def test_causal_prefix() -> None:
    rng = np.random.default_rng(2)
    series = pd.Series(rng.normal(0, 1, 400).cumsum(), index=_index(400))
    full = score_series(series)
    np.testing.assert_array_equal(score_series(series.iloc[:250]), full[:250])
