"""Per-series deep dive with statsmodels: a damped-trend forecast path with an interval band.

Slower than the fleet-wide vectorised pass (one model fit per series), meant for the dashboard's
device page: the path, its band, and when the band and the path cross the limit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models._common import FloatArray


@dataclass(frozen=True)
class DeepDiveForecast:
    """Forecast path and band (same index), and when the path / band reach the limit."""

    mean: pd.Series
    lower: pd.Series
    upper: pd.Series
    time_to_threshold_seconds: float
    earliest_seconds: float
    latest_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": [ts.isoformat() for ts in self.mean.index],
            "mean": self.mean.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "time_to_threshold_seconds": self.time_to_threshold_seconds,
            "earliest_seconds": self.earliest_seconds,
            "latest_seconds": self.latest_seconds,
        }


def forecast_deep_dive(
    series: pd.Series,
    threshold: float | None = None,
    *,
    horizon_points: int = 240,
    confidence_z: float = 1.64,
    rising: bool = True,
) -> DeepDiveForecast:
    """Fit ``ExponentialSmoothing(trend="add", damped_trend=True)`` to one series.

    ``series`` has a regular DatetimeIndex (missing points are interpolated). The band is the
    path ± ``confidence_z`` times the one-step residual scale grown like a random walk with
    the horizon. Times to the limit are seconds from the last point (``inf`` if not reached
    within ``horizon_points``).
    """
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    clean = series.astype("float64").interpolate(limit_direction="both")
    step = _step(clean.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            clean.to_numpy(), trend="add", damped_trend=True, initialization_method="estimated"
        )
        fitted = model.fit()
    path = np.asarray(fitted.forecast(horizon_points), dtype=np.float64)
    residual_scale = float(np.nanstd(np.asarray(fitted.resid, dtype=np.float64)))
    spread = confidence_z * residual_scale * np.sqrt(np.arange(1, horizon_points + 1))
    index = pd.DatetimeIndex([clean.index[-1] + step * (i + 1) for i in range(horizon_points)])
    seconds = step.total_seconds()
    lower, upper = path - spread, path + spread
    if rising:
        mean_t, early_t, late_t = (
            _first_reach(p, threshold, seconds) for p in (path, upper, lower)
        )
    else:
        mean_t, early_t, late_t = (
            _first_reach(-p, None if threshold is None else -threshold, seconds)
            for p in (path, lower, upper)
        )
    return DeepDiveForecast(
        mean=pd.Series(path, index=index),
        lower=pd.Series(lower, index=index),
        upper=pd.Series(upper, index=index),
        time_to_threshold_seconds=mean_t,
        earliest_seconds=early_t,
        latest_seconds=late_t,
    )


def _step(index: Any) -> pd.Timedelta:
    deltas = pd.Series(index).diff().dropna()
    return pd.Timedelta(deltas.median()) if len(deltas) else pd.Timedelta(minutes=1)


def _first_reach(path: FloatArray, threshold: float | None, step_seconds: float) -> float:
    if threshold is None:
        return float("inf")
    above = np.flatnonzero(path >= threshold)
    return float((above[0] + 1) * step_seconds) if above.size else float("inf")
