"""The causal single-series entry point used for labelled benchmarks (NAB-style)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models._common import FloatArray
from models.anomaly import DetectorConfig, detect


def score_series(series: pd.Series, config: DetectorConfig | None = None) -> FloatArray:
    """Score one univariate series with the default detector: one finite score in [0, 1] per point.

    ``series`` has a DatetimeIndex (irregular sampling is fine; the daily profile and the gap
    detector use the timestamps). Causal: the score of a point uses only that point and the
    ones before it. NaN and infinite values are treated as missing; the first ``warmup``
    points score 0; constant and very short series score 0 throughout.
    """
    n_points = len(series)
    if n_points == 0:
        return np.zeros(0)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    timestamps = None
    if isinstance(series.index, pd.DatetimeIndex):
        index = series.index.tz_convert("UTC") if series.index.tz is not None else series.index
        timestamps = index.to_numpy(dtype="datetime64[ns]")
        if np.isnat(timestamps).any() or (np.diff(timestamps.astype(np.int64)) < 0).any():
            timestamps = None
    scores, _ = detect(values[np.newaxis, :], timestamps, config)
    cleaned = np.clip(np.nan_to_num(scores[0], nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.asarray(cleaned, dtype=np.float64)
