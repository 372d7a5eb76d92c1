"""Causal, vectorised anomaly detection over many series at once (series x time).

Per series, a damped local-trend model with Huber-clipped updates tracks a robust level and
slope (plus an additive daily profile learnt per time-of-day bucket when timestamps are
given), and an EWMA of the clipped absolute residual tracks a robust, MAD-like scale, floored
at half the sensor's typical step so quantised series do not fire on single steps. From the
standardised residual ``z``:

* **spikes** score on the one-point ``|z|``;
* **level shifts and trend breaks** score on a fast and a slow EWMA of the clipped ``z``, each
  normalised by its own tracked spread, so series whose residuals are naturally
  autocorrelated stay quiet;
* **stuck sensors** score on a run of identical values in a series that usually changes;
* **dropouts** score on runs of missing values in a series that is usually complete, and on
  gaps in time much longer than the usual sampling interval.

Clipped updates still move the level by up to ``clip * scale`` per point and the scale grows
while residuals stay large, so a sustained shift is absorbed within a bounded number of points
and its score settles; stuck and dropout scores decay as the run goes on. Only the recurrence
is a loop over time (compiled, see ``models._recurrence``), which also counts repeats and
missing points; runs are then computed over the batch for the series that have any.
:class:`DetectorState` carries everything between batches, so scoring a history in pieces with
:func:`update` gives exactly the scores of scoring it in one go.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models._common import FloatArray, as_2d, saturate, timestamps_to_seconds
from models._recurrence import run_recurrence


@dataclass(frozen=True)
class DetectorConfig:
    """Rates (per point; ``season_alpha`` per day) and thresholds of the default detector."""

    level_alpha: float = 0.1
    trend_beta: float = 0.005
    trend_damping: float = 0.95
    scale_alpha: float = 0.02
    season_alpha: float = 0.2
    season_buckets: int = 48
    clip: float = 3.0
    warmup: int = 30
    spike_onset: float = 4.5
    spike_width: float = 3.0
    shift_alpha: float = 0.1
    drift_alpha: float = 0.02
    shift_spread_alpha: float = 0.002
    shift_onset: float = 4.0
    shift_width: float = 2.0
    stuck_points: int = 15
    dropout_points: int = 3
    settle_points: float = 60.0
    gap_ratio_onset: float = 6.0
    gap_ratio_width: float = 6.0
    interval_alpha: float = 0.01
    resolution_alpha: float = 0.02


_ARRAY_FIELDS = (
    "level",
    "trend",
    "scale",
    "season",
    "count",
    "evidence",
    "spread",
    "drift",
    "drift_spread",
    "resolution",
    "last_valid",
    "changes_seen",
    "last_raw",
    "same_run",
    "changes",
    "nan_run",
    "missing",
    "points",
)


@dataclass
class DetectorState:
    """Everything the detector carries from one batch to the next.

    Arrays have shape ``(n_series,)`` except ``season`` (``(season_buckets, n_series)``):
    the robust level, damped trend and scale; the shift evidence and its usual spread; counts
    of valid points, changes between consecutive values, missing points and all points; the
    current runs of repeated and missing values. ``last_time`` and ``log_interval`` describe
    the shared clock (seconds; NaN before any timestamp). ``to_dict``/``from_dict`` give plain
    lists and numbers for persistence.
    """

    config: DetectorConfig
    level: FloatArray
    trend: FloatArray
    scale: FloatArray
    season: FloatArray
    count: FloatArray
    evidence: FloatArray
    spread: FloatArray
    drift: FloatArray
    drift_spread: FloatArray
    resolution: FloatArray
    last_valid: FloatArray
    changes_seen: FloatArray
    last_raw: FloatArray
    same_run: FloatArray
    changes: FloatArray
    nan_run: FloatArray
    missing: FloatArray
    points: FloatArray
    last_time: float = float("nan")
    log_interval: float = float("nan")

    @property
    def n_series(self) -> int:
        return int(self.level.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: config values, clock scalars and every array as a list."""
        out: dict[str, Any] = {"config": asdict(self.config)}
        for name in _ARRAY_FIELDS:
            out[name] = getattr(self, name).tolist()
        out["last_time"] = self.last_time
        out["log_interval"] = self.log_interval
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorState:
        """Rebuild a state saved with :meth:`to_dict`."""
        arrays = {name: np.asarray(data[name], dtype=np.float64) for name in _ARRAY_FIELDS}
        return cls(
            config=DetectorConfig(**data["config"]),
            last_time=float(data["last_time"]),
            log_interval=float(data["log_interval"]),
            **arrays,
        )

    def copy(self) -> DetectorState:
        arrays = {name: getattr(self, name).copy() for name in _ARRAY_FIELDS}
        return DetectorState(
            config=self.config, last_time=self.last_time, log_interval=self.log_interval, **arrays
        )


@dataclass(frozen=True)
class Detection:
    """Scores of one batch, each (n_series, n_points) in [0, 1], and the state after it.

    ``scores`` is the maximum of the per-kind scores.
    """

    scores: FloatArray
    spike: FloatArray
    shift: FloatArray
    stuck: FloatArray
    dropout: FloatArray
    state: DetectorState


def initial_state(n_series: int, config: DetectorConfig | None = None) -> DetectorState:
    """A fresh state for ``n_series`` series that have seen no data yet."""
    config = config or DetectorConfig()
    zeros = np.zeros(n_series)
    return DetectorState(
        config=config,
        level=zeros.copy(),
        trend=zeros.copy(),
        scale=zeros.copy(),
        season=np.zeros((config.season_buckets, n_series)),
        count=zeros.copy(),
        evidence=zeros.copy(),
        spread=zeros.copy(),
        drift=zeros.copy(),
        drift_spread=zeros.copy(),
        resolution=zeros.copy(),
        last_valid=np.full(n_series, np.nan),
        changes_seen=zeros.copy(),
        last_raw=np.full(n_series, np.nan),
        same_run=zeros.copy(),
        changes=zeros.copy(),
        nan_run=zeros.copy(),
        missing=zeros.copy(),
        points=zeros.copy(),
    )


def detect(
    values: Any, timestamps: Any = None, config: DetectorConfig | None = None
) -> tuple[FloatArray, DetectorState]:
    """Score a whole history from scratch: ``(scores, state)`` for values (series x time)."""
    matrix = as_2d(values)
    return update(initial_state(matrix.shape[0], config), matrix, timestamps)


def update(
    state: DetectorState, new_values: Any, timestamps: Any = None
) -> tuple[FloatArray, DetectorState]:
    """Score a batch of new points per series and return ``(scores, new_state)``.

    ``new_values`` is (series x new points), or 1-D with one new point per series when the
    state has more than one series; ``timestamps`` (optional, shared by all series) has one
    entry per new point, in seconds since the epoch or datetime64. The input state is not
    modified. Causal: the score of a point depends only on that point and earlier ones.
    """
    detection = _run(state, new_values, timestamps, components=False)
    return detection.scores, detection.state


def update_with_components(
    state: DetectorState, new_values: Any, timestamps: Any = None
) -> Detection:
    """Like :func:`update`, but also returns the score of each kind of anomaly."""
    return _run(state, new_values, timestamps, components=True)


def _run(state: DetectorState, new_values: Any, timestamps: Any, *, components: bool) -> Detection:
    matrix = np.asarray(new_values, dtype=np.float64)
    if matrix.ndim == 1 and state.n_series > 1:
        matrix = matrix[:, np.newaxis]
    matrix = as_2d(matrix)
    if matrix.shape[0] != state.n_series:
        raise ValueError(f"state has {state.n_series} series, values have {matrix.shape[0]}")
    seconds = timestamps_to_seconds(timestamps, matrix.shape[1])
    new_state = state.copy()
    with np.errstate(all="ignore"):
        count_before = new_state.count.copy()
        first, second, repeated, changed, missing = run_recurrence(
            new_state, matrix, seconds, components=components
        )
        stuck = _stuck_scores(new_state, matrix, repeated, changed, count_before)
        dropout = _dropout_scores(new_state, matrix, missing, count_before, seconds)
    scores = first if second is None else np.maximum(first, second)
    for kind in (stuck, dropout):
        if kind is not None and kind.any():
            np.maximum(scores, kind, out=scores)
    if second is None:
        return Detection(scores, scores, scores, scores, scores, new_state)
    return Detection(
        scores=scores,
        spike=first,
        shift=second,
        stuck=np.zeros(matrix.shape) if stuck is None else stuck,
        dropout=np.zeros(matrix.shape) if dropout is None else dropout,
        state=new_state,
    )


def _run_lengths(mask: Any, carry: FloatArray) -> FloatArray:
    """Length of the run of True ending at each point (series x time), continuing ``carry``."""
    index = np.arange(mask.shape[1], dtype=np.float64)[np.newaxis, :]
    last_break = np.where(mask, -1.0 - carry[:, np.newaxis], index)
    np.maximum.accumulate(last_break, axis=1, out=last_break)
    return np.asarray(index - last_break, dtype=np.float64)


def _warm(s: DetectorState, valid: Any, count_before: FloatArray) -> FloatArray:
    seen_before = np.cumsum(valid, axis=1) - valid + count_before[:, np.newaxis]
    return np.asarray(seen_before >= s.config.warmup, dtype=np.float64)


def _settling(run: FloatArray, onset: int, settle_points: float) -> FloatArray:
    """1 when a run reaches ``onset`` points, decaying as it goes on: it is then known."""
    return np.asarray(
        (run >= onset) * np.exp(-np.maximum(run - onset, 0.0) / settle_points), dtype=np.float64
    )


def _stuck_scores(
    s: DetectorState,
    raw: FloatArray,
    repeated: FloatArray,
    changed_count: FloatArray,
    count_before: FloatArray,
) -> FloatArray | None:
    """Repeated identical values in series that usually change from one sample to the next
    (None: no repeats, all scores 0). Only series with a repeat in the batch are scanned."""
    c = s.config
    repeats = repeated > 0.0
    rows = np.flatnonzero(repeats)
    s.same_run[~repeats] = 0.0
    scores = None
    if rows.size:
        sub = raw[rows]
        sub_valid = np.isfinite(sub)
        same = np.empty(sub.shape, dtype=bool)
        np.equal(sub[:, 1:], sub[:, :-1], out=same[:, 1:])
        np.equal(sub[:, 0], s.last_raw[rows], out=same[:, 0])
        same &= sub_valid
        scores = np.zeros(raw.shape)
        run = _run_lengths(same, s.same_run[rows])
        changes = np.cumsum(sub_valid & ~same, axis=1) + s.changes[rows, np.newaxis]
        seen = np.cumsum(sub_valid, axis=1) + count_before[rows, np.newaxis]
        usually_changes = np.clip((changes / np.maximum(seen, 1.0) - 0.5) / 0.4, 0.0, 1.0)
        warm = _warm(s, sub_valid, count_before[rows])
        scores[rows] = _settling(run, c.stuck_points, c.settle_points) * usually_changes * warm
        s.same_run[rows] = run[:, -1]
    s.changes += changed_count
    # The last value seen, valid or not: a missing point breaks a run of repeats.
    s.last_raw = raw[:, -1].copy()
    return scores


def _dropout_scores(
    s: DetectorState,
    raw: FloatArray,
    missing_count: FloatArray,
    count_before: FloatArray,
    seconds: FloatArray | None,
) -> FloatArray | None:
    """Runs of missing values in usually complete series, and gaps in the shared clock
    (None: neither, all scores 0). Only series with a missing point are scanned."""
    c = s.config
    gaps = missing_count > 0.0
    rows = np.flatnonzero(gaps)
    s.nan_run[~gaps] = 0.0
    scores = None
    if rows.size:
        sub_valid = np.isfinite(raw[rows])
        sub_missing = ~sub_valid
        scores = np.zeros(raw.shape)
        run = _run_lengths(sub_missing, s.nan_run[rows])
        missed = np.cumsum(sub_missing, axis=1) + s.missing[rows, np.newaxis]
        points = np.arange(1.0, raw.shape[1] + 1.0)[np.newaxis, :] + s.points[rows, np.newaxis]
        usually_complete = np.clip((0.5 - missed / points) / 0.4, 0.0, 1.0)
        warm = _warm(s, sub_valid, count_before[rows])
        scores[rows] = _settling(run, c.dropout_points, c.settle_points) * usually_complete * warm
        s.nan_run[rows] = run[:, -1]
    s.missing += missing_count
    s.points += raw.shape[1]
    if seconds is not None:
        gap = _clock_gaps(s, seconds)
        columns = np.flatnonzero(gap > 0.0)
        if columns.size:
            valid = np.isfinite(raw)
            warm = _warm(s, valid, count_before)[:, columns]
            gap_scores = gap[np.newaxis, columns] * warm * valid[:, columns]
            if scores is None:
                scores = np.zeros(raw.shape)
            scores[:, columns] = np.maximum(scores[:, columns], gap_scores)
    return scores


def _clock_gaps(s: DetectorState, seconds: FloatArray) -> FloatArray:
    """Gap score per point of the shared clock: an interval far above the usual one."""
    c = s.config
    ratios = np.zeros(seconds.shape[0])
    last_time, log_interval = s.last_time, s.log_interval
    for t, now in enumerate(seconds.tolist()):
        interval = now - last_time
        if interval > 0.0:
            log_now = math.log(interval)
            if math.isnan(log_interval):
                log_interval = log_now
            ratios[t] = math.exp(log_now - log_interval)
            # Log domain: one long gap barely moves the usual interval.
            log_interval += c.interval_alpha * (log_now - log_interval)
        if not math.isnan(now):
            last_time = now
    s.last_time, s.log_interval = last_time, log_interval
    return saturate(ratios, c.gap_ratio_onset, c.gap_ratio_width)
