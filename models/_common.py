"""Small helpers shared by the models: array shaping and the score mapping."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def as_2d(values: Any) -> FloatArray:
    """Values as a float64 (series x time) matrix; a 1-D input is one series."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        return array[np.newaxis, :]
    if array.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D array of values, got {array.ndim}-D")
    return array


def per_series(value: Any, n_series: int) -> FloatArray:
    """A scalar or per-series parameter broadcast to shape (n_series,)."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n_series,)).copy()


def saturate(z: FloatArray, onset: float, width: float) -> FloatArray:
    """Map a non-negative evidence value to [0, 1]: zero up to ``onset``, then a smooth rise.

    ``1 - exp(-((z - onset) / width)^2)`` is flat at the onset (quiet on ordinary noise) and
    saturates quickly past it, so a clear anomaly reads close to 1.
    """
    excess = np.maximum(np.nan_to_num(z, nan=0.0, posinf=1e6, neginf=0.0) - onset, 0.0) / width
    return np.asarray(1.0 - np.exp(-(np.minimum(excess, 30.0) ** 2)), dtype=np.float64)


def timestamps_to_seconds(timestamps: Any, n_points: int) -> FloatArray | None:
    """Timestamps (seconds since the epoch, numpy datetime64, or None) as float seconds."""
    if timestamps is None:
        return None
    array = np.asarray(timestamps)
    if np.issubdtype(array.dtype, np.datetime64):
        seconds = array.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    else:
        seconds = array.astype(np.float64)
    if seconds.shape != (n_points,):
        raise ValueError(f"timestamps must have shape ({n_points},), got {seconds.shape}")
    return seconds
