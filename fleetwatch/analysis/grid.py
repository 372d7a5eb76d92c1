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


# Per metric: label columns, each column's values, the series' combined codes, their keys.
_Known = tuple[list[str], list[np.ndarray], np.ndarray, list[SeriesKey]]


class GridLayout:
    """What the grid learnt about each metric's series last time, reused while it holds.

    A shard reads the same series cycle after cycle; numbering them is cheap, building their
    keys is not. The layout remembers, per metric, the label values and series seen, and
    hands back the very same key tuples (and the same key list) while they are unchanged, so
    mapping the batch onto the shard's state rows can be remembered too. It is only a memo:
    a layout that does not match the data is rebuilt, never trusted.
    """

    def __init__(self) -> None:
        self._metrics: dict[
            str, tuple[list[str], list[np.ndarray], np.ndarray, list[SeriesKey]]
        ] = {}
        self._keys: tuple[list[tuple[str, list[SeriesKey]]], list[SeriesKey]] | None = None

    def keys_for(
        self,
        metric: str,
        label_cols: list[str],
        columns: list[np.ndarray],
        unique: np.ndarray,
    ) -> list[SeriesKey]:
        known = self._metrics.get(metric)
        if (
            known is not None
            and known[0] == label_cols
            and np.array_equal(known[2], unique)
            and len(known[1]) == len(columns)
            and all(np.array_equal(a, b) for a, b in zip(known[1], columns, strict=True))
        ):
            return known[3]
        keys = _build_keys(metric, label_cols, columns, unique)
        self._metrics[metric] = (label_cols, columns, unique, keys)
        return keys

    def concatenate(self, parts: list[tuple[str, list[SeriesKey]]]) -> list[SeriesKey]:
        """All metrics' keys in one list: the same list object as last time when every part
        is the same as last time."""
        last = self._keys
        if (
            last is not None
            and len(last[0]) == len(parts)
            and all(
                m1 == m2 and k1 is k2 for (m1, k1), (m2, k2) in zip(last[0], parts, strict=True)
            )
        ):
            return last[1]
        joined = [key for _, keys in parts for key in keys]
        self._keys = (list(parts), joined)
        return joined


class GridBuilder:
    """Build a :class:`GridBatch` metric by metric, so a caller can grid one metric's points
    while the next metric is still being read."""

    def __init__(
        self, *, start_ms: int, end_ms: int, step_ms: int, layout: GridLayout | None = None
    ) -> None:
        self.first = start_ms - start_ms % step_ms
        self.end_ms = end_ms
        self.step_ms = step_ms
        self.n_steps = max(0, -(-(end_ms - self.first) // step_ms))
        self.times = self.first + step_ms * np.arange(self.n_steps, dtype=np.int64)
        self.layout = layout
        self._parts: list[tuple[str, list[SeriesKey]]] = []
        self._blocks: list[np.ndarray] = []

    def add(self, metric: str, df: pd.DataFrame) -> None:
        """Average one metric's points per step (``df``: the store's long frame)."""
        if df.empty or self.n_steps == 0:
            return
        label_cols = sorted(c for c in df.columns if c not in ("time", "value"))
        ms = df["time"].dt.tz_convert(None).dt.as_unit("ms").to_numpy().astype(np.int64)
        inside = (ms >= self.first) & (ms < self.end_ms)
        if not inside.any():
            return
        if not inside.all():
            df, ms = df.loc[inside], ms[inside]
        bucket = (ms - self.first) // self.step_ms
        codes, columns, unique = _series_codes(df, label_cols)
        values = df["value"].to_numpy(dtype=np.float64)
        n = len(unique)
        if self.n_steps == 1:
            cells = codes
        else:
            cells = codes * self.n_steps + bucket
        # bincount adds the weights in input order, as np.add.at does: the same sums.
        sums = np.bincount(cells, weights=values, minlength=n * self.n_steps)
        counts = np.bincount(cells, minlength=n * self.n_steps).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            block = np.where(counts > 0, sums / counts, np.nan)
        self._blocks.append(block.reshape(n, self.n_steps))
        if self.layout is not None:
            keys = self.layout.keys_for(metric, label_cols, columns, unique)
        else:
            keys = _build_keys(metric, label_cols, columns, unique)
        self._parts.append((metric, keys))

    def batch(self) -> GridBatch:
        if self.layout is not None:
            keys = self.layout.concatenate(self._parts)
        else:
            keys = [key for _, part in self._parts for key in part]
        matrix = np.vstack(self._blocks) if self._blocks else np.empty((0, self.n_steps))
        return GridBatch(keys=keys, values=matrix, times_ms=self.times)


def to_grid(
    frames: dict[str, pd.DataFrame],
    *,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    layout: GridLayout | None = None,
) -> GridBatch:
    """Average each series' points per step over ``[start_ms, end_ms)``.

    ``frames`` maps a metric name to the store's long DataFrame (``time``, ``value`` and one
    column per label).
    """
    builder = GridBuilder(start_ms=start_ms, end_ms=end_ms, step_ms=step_ms, layout=layout)
    for metric, df in frames.items():
        builder.add(metric, df)
    return builder.batch()


def _build_keys(
    metric: str, label_cols: list[str], columns: list[np.ndarray], unique: np.ndarray
) -> list[SeriesKey]:
    """The series key of every distinct label combination (``unique``, mixed-radix codes)."""
    if not label_cols:
        return [(metric, ())]
    digits: list[np.ndarray] = []
    rest = unique
    for values in reversed(columns):
        rest, digit = np.divmod(rest, len(values))
        digits.append(values[digit])
    digits.reverse()
    keys: list[SeriesKey] = []
    for combo in zip(*(d.tolist() for d in digits), strict=True):
        pairs = tuple((k, v) for k, v in zip(label_cols, combo, strict=True) if v)
        keys.append((metric, pairs))
    return keys


def _series_codes(
    df: pd.DataFrame, label_cols: list[str]
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Number the distinct label combinations of ``df``: per-column codes combined in mixed
    radix, then one ``np.unique`` — no per-row Python work.

    Returns each row's series number, each column's values (the last one ``""``: label
    absent) and the combined code of every series, ascending.
    """
    if not label_cols:
        return np.zeros(len(df), dtype=np.int64), [], np.zeros(1, dtype=np.int64)
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
    return inverse.reshape(-1), columns, unique
