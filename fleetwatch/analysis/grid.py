"""Put new points of many series on one time grid: (series x steps) matrices for the models.

Devices sample at their own moments; the detectors want one shared clock. Each series' points
are averaged per grid step (``floor(ts / step) * step``, as the stores downsample), and a step
without a point is NaN — which the detectors read as a dropout when it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleetwatch.telemetry import SeriesKey


@dataclass(frozen=True)
class GridBatch:
    """New points of some series on the grid ``times_ms`` (bucket starts, ascending)."""

    keys: list[SeriesKey]
    values: np.ndarray  # (len(keys), len(times_ms)) float64, NaN where a step has no point
    times_ms: np.ndarray  # int64


def series_name(key: SeriesKey) -> str:
    """A readable, canonical text form of a series: ``metric{k="v",...}``."""
    metric, labels = key
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{metric}{{{inner}}}"


def to_grid(
    frames: dict[str, pd.DataFrame], *, start_ms: int, end_ms: int, step_ms: int
) -> GridBatch:
    """Average each series' points per step over ``[start_ms, end_ms)``.

    ``frames`` maps a metric name to the store's long DataFrame (``time``, ``value`` and one
    column per label).
    """
    first = start_ms - start_ms % step_ms
    n_steps = max(0, -(-(end_ms - first) // step_ms))
    times = first + step_ms * np.arange(n_steps, dtype=np.int64)
    keys: list[SeriesKey] = []
    blocks: list[np.ndarray] = []
    for metric, df in frames.items():
        if df.empty or n_steps == 0:
            continue
        label_cols = sorted(c for c in df.columns if c not in ("time", "value"))
        ms = df["time"].dt.tz_convert(None).dt.as_unit("ms").to_numpy().astype(np.int64)
        inside = (ms >= first) & (ms < end_ms)
        if not inside.any():
            continue
        df = df.loc[inside, [*label_cols, "value"]]
        bucket = (ms[inside] - first) // step_ms
        codes, uniques = _series_codes(df, label_cols)
        sums = np.zeros((len(uniques), n_steps))
        counts = np.zeros((len(uniques), n_steps))
        np.add.at(sums, (codes, bucket), df["value"].to_numpy(dtype=np.float64))
        np.add.at(counts, (codes, bucket), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            blocks.append(np.where(counts > 0, sums / counts, np.nan))
        for values in uniques:
            pairs = tuple((k, v) for k, v in zip(label_cols, values, strict=True) if v)
            keys.append((metric, pairs))
    matrix = np.vstack(blocks) if blocks else np.empty((0, n_steps))
    return GridBatch(keys=keys, values=matrix, times_ms=times)


def _series_codes(
    df: pd.DataFrame, label_cols: list[str]
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Number the distinct label combinations of ``df``: per-column codes combined in mixed
    radix, then one ``np.unique`` — no per-row Python work."""
    if not label_cols:
        return np.zeros(len(df), dtype=np.int64), [()]
    combined = np.zeros(len(df), dtype=np.int64)
    columns: list[np.ndarray] = []
    for col in label_cols:
        col_codes, col_uniques = pd.factorize(df[col], use_na_sentinel=True)
        # NaN (label absent on this series) becomes its own code: an empty value.
        values = np.append(np.asarray(col_uniques, dtype=object), "")
        col_codes = np.where(col_codes < 0, len(values) - 1, col_codes)
        combined = combined * len(values) + col_codes
        columns.append(values)
    unique, inverse = np.unique(combined, return_inverse=True)
    digits: list[np.ndarray] = []
    rest = unique
    for values in reversed(columns):
        rest, digit = np.divmod(rest, len(values))
        digits.append(values[digit])
    digits.reverse()
    combos = list(zip(*(list(d) for d in digits), strict=True))
    return inverse.reshape(-1), combos
