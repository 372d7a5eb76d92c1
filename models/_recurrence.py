"""The per-point recurrence of the anomaly detector: a loop over time, vector ops over series.

Written with in-place operations on preallocated rows so that one step over tens of thousands
of series stays in cache. Two variants of the step share the same arithmetic: the general one
handles series still in warm-up (running means, no clipping); once every series in the batch is
past warm-up a lean step skips those masks. Both give bit-identical results for warm series, so
scores do not depend on how a history is split into batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from models._common import FloatArray

if TYPE_CHECKING:
    from models.anomaly import DetectorState

SECONDS_PER_DAY = 86_400.0
# E|X| = sqrt(2/pi) * sigma for a normal variable: turns a mean absolute deviation into a sigma.
MAD_TO_SIGMA = 1.2533
# A sigma floor of half the typical change between readings.
RESOLUTION_TO_SIGMA = 0.5
# Time steps per transposed block: a few MB for tens of thousands of series.
BLOCK = 32


def saturate_excess(excess: FloatArray) -> FloatArray:
    """``1 - exp(-max(excess, 0)^2)``: 0 up to the onset, then a smooth, fast rise to 1."""
    out = np.maximum(excess, 0.0)
    np.minimum(out, 6.0, out=out)
    np.square(out, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.subtract(1.0, out, out=out)
    return out


def run_recurrence(
    s: DetectorState, values: FloatArray, seconds: FloatArray | None, *, components: bool
) -> tuple[FloatArray, FloatArray | None]:
    """Advance the level/trend/scale/evidence state over ``values`` (series x time).

    Returns scores in [0, 1]: the larger of the spike and shift scores, or, with
    ``components``, the spike scores and the shift scores separately.
    """
    c = s.config
    n_series, n_points = values.shape
    first = np.empty_like(values)
    second = np.empty_like(values) if components else None
    buckets = None
    season_rates = np.zeros(n_points)
    if seconds is not None:
        width = SECONDS_PER_DAY / c.season_buckets
        buckets = ((seconds % SECONDS_PER_DAY) // width).astype(np.int64)
        # The daily profile learns at a rate per day, whatever the sampling interval: each
        # point moves its bucket in proportion to the share of the bucket it covers.
        elapsed = np.diff(seconds, prepend=s.last_time)
        covered = np.clip(np.nan_to_num(elapsed, nan=0.0), 0.0, width) / width
        season_rates = c.season_alpha * covered
    rows = _Rows(n_series)
    lean_after = max(float(c.warmup), 1.0 / min(c.level_alpha, c.scale_alpha))
    lean = False
    # Blocks of time steps are transposed to time-major so every step reads and writes
    # contiguous rows; whole-matrix transposes would cost more than the recurrence itself.
    for start in range(0, n_points, BLOCK):
        stop = min(start + BLOCK, n_points)
        block = np.ascontiguousarray(values[:, start:stop].T)
        finite = np.isfinite(block)
        weight = finite.astype(np.float64)
        observed = np.where(finite, block, 0.0)
        resolution_lean = bool(s.changes_seen.min() >= 1.0 / c.resolution_alpha)
        out_first = np.empty_like(block)
        out_second = np.empty_like(block) if second is not None else None
        for i in range(stop - start):
            if not lean:
                lean = bool(s.count.min() >= lean_after)
            season = None if buckets is None else s.season[buckets[start + i]]
            rate = float(season_rates[start + i])
            _step(s, rows, observed[i], weight[i], season, rate, lean)
            _resolution(s, rows, block[i], finite[i], resolution_lean)
            _evidence(s, rows, lean)
            if out_second is None:
                np.maximum(rows.spike, rows.shift, out=out_first[i])
            else:
                out_first[i] = rows.spike
                out_second[i] = rows.shift
        # Saturate while the block is still in cache.
        first[:, start:stop] = saturate_excess(out_first).T
        if second is not None and out_second is not None:
            second[:, start:stop] = saturate_excess(out_second).T
    return first, second


def _resolution(s: DetectorState, r: _Rows, x: FloatArray, valid: Any, lean: bool) -> None:
    """Track the sensor's resolution: the typical size of a change between valid readings
    (a running mean over the first changes, then an EWMA)."""
    np.subtract(x, s.last_valid, out=r.tmp)
    np.abs(r.tmp, out=r.tmp)
    # NaN (no previous value, or missing now) compares False: no change to learn from.
    np.greater(r.tmp, 0.0, out=r.changed)
    r.changed &= valid
    r.tmp -= s.resolution
    alpha = s.config.resolution_alpha
    if lean:
        r.tmp *= alpha
    else:
        r.tmp *= np.maximum(1.0 / (s.changes_seen + 1.0), alpha)
    s.changes_seen += r.changed
    np.add(s.resolution, r.tmp, out=s.resolution, where=r.changed)
    np.copyto(s.last_valid, x, where=valid)


class _Rows:
    """Scratch rows reused by every step."""

    def __init__(self, n_series: int) -> None:
        self.expected = np.empty(n_series)
        self.residual = np.empty(n_series)
        self.sigma = np.empty(n_series)
        self.z = np.empty(n_series)
        self.bound = np.empty(n_series)
        self.clipped = np.empty(n_series)
        self.z_clipped = np.empty(n_series)
        self.changed = np.empty(n_series, dtype=bool)
        self.tmp = np.empty(n_series)
        self.warm = np.ones(n_series)
        self.spike = np.empty(n_series)
        self.shift = np.empty(n_series)


def _step(
    s: DetectorState,
    r: _Rows,
    x: FloatArray,
    w: FloatArray,
    season: FloatArray | None,
    season_rate: float,
    lean: bool,
) -> None:
    c = s.config
    np.multiply(s.trend, c.trend_damping, out=r.tmp)
    np.add(s.level, r.tmp, out=r.expected)
    if season is not None:
        r.expected += season
    np.subtract(x, r.expected, out=r.residual)
    r.residual *= w
    np.multiply(s.scale, MAD_TO_SIGMA, out=r.sigma)
    # Quantised series (whole degrees, counts) sit still between steps: one step of the
    # sensor's resolution is never an anomaly on its own. The tiny constant keeps 0 / 0 out.
    np.multiply(s.resolution, RESOLUTION_TO_SIGMA, out=r.tmp)
    r.tmp += 1e-300
    np.maximum(r.sigma, r.tmp, out=r.sigma)
    np.divide(r.residual, r.sigma, out=r.z)
    np.maximum(r.z, -c.clip, out=r.z_clipped)
    np.minimum(r.z_clipped, c.clip, out=r.z_clipped)
    np.multiply(r.z_clipped, r.sigma, out=r.clipped)
    if lean:
        level_rate: Any = c.level_alpha
        scale_rate: Any = c.scale_alpha
    else:
        # Warm-up: no clipping (the scale is not known yet), no evidence, running means (1/n).
        np.greater_equal(s.count, c.warmup, out=r.warm)
        np.copyto(r.clipped, r.residual, where=r.warm == 0.0)
        r.z_clipped *= r.warm
        running = 1.0 / (s.count + 1.0)
        level_rate = np.maximum(running, c.level_alpha)
        scale_rate = np.maximum(running, c.scale_alpha)
    s.trend *= c.trend_damping
    np.multiply(r.clipped, c.trend_beta if lean else c.trend_beta * r.warm, out=r.tmp)
    s.trend += r.tmp
    np.multiply(r.clipped, level_rate, out=r.tmp)
    np.add(r.expected, r.tmp, out=s.level)
    if season is not None:
        s.level -= season
        np.multiply(r.clipped, season_rate if lean else season_rate * r.warm, out=r.tmp)
        season += r.tmp
    np.abs(r.clipped, out=r.tmp)
    r.tmp -= s.scale
    r.tmp *= scale_rate
    r.tmp *= w
    s.scale += r.tmp
    s.count += w


def _evidence(s: DetectorState, r: _Rows, lean: bool) -> None:
    """Spike excess from ``|z|``; shift excess from EWMAs of the clipped z over their spread."""
    c = s.config
    spike, shift = r.spike, r.shift
    np.abs(r.z, out=spike)
    if not lean:
        spike *= r.warm
    spike -= c.spike_onset
    spike *= 1.0 / c.spike_width
    _channel(s.evidence, s.spread, r.z_clipped, r.tmp, shift, c.shift_alpha, c)
    _channel(s.drift, s.drift_spread, r.z_clipped, r.tmp, r.bound, c.drift_alpha, c)
    np.maximum(shift, r.bound, out=shift)
    shift -= c.shift_onset * MAD_TO_SIGMA
    shift *= 1.0 / (c.shift_width * MAD_TO_SIGMA)


def _channel(
    evidence: FloatArray,
    spread: FloatArray,
    z_clipped: FloatArray,
    tmp: FloatArray,
    out: FloatArray,
    alpha: float,
    c: Any,
) -> None:
    """EWMA of the clipped z, and its size relative to its usual spread (into ``out``)."""
    np.subtract(z_clipped, evidence, out=tmp)
    tmp *= alpha
    evidence += tmp
    np.abs(evidence, out=out)
    np.subtract(out, spread, out=tmp)
    tmp *= c.shift_spread_alpha
    spread += tmp
    # Never more sensitive than for white noise, whose EWMA has this mean absolute value.
    white = np.sqrt(alpha / (2.0 - alpha)) / MAD_TO_SIGMA
    np.maximum(spread, white, out=tmp)
    out /= tmp
