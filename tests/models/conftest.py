"""Synthetic series with known anomalies for the detector and forecaster tests."""

from __future__ import annotations

import numpy as np
import pytest

MINUTE = 60.0
START = 1_700_000_000.0  # an arbitrary UTC second; the daily profile uses time of day


def seasonal(n_series: int, n_points: int, seed: int, noise: float = 0.5) -> np.ndarray:
    """Temperature-like series: level, daily cycle with random phase, white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)[np.newaxis, :]
    phase = rng.uniform(0, 1440, (n_series, 1))
    level = rng.uniform(30, 60, (n_series, 1))
    cycle = rng.uniform(1, 6, (n_series, 1)) * np.sin(2 * np.pi * (t + phase) / 1440)
    return level + cycle + rng.normal(0, noise, (n_series, n_points))


@pytest.fixture
def minutes() -> np.ndarray:
    return START + np.arange(3 * 1440) * MINUTE
