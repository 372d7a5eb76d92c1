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
    rows = _Rows(n_series, c)
    lean_after = max(float(c.warmup), 1.0 / min(c.level_alpha, c.scale_alpha))
    lean = False
    # Blocks of time steps are transposed to time-major so every step reads and writes
    # contiguous rows; whole-matrix transposes would cost more than the recurrence itself.
    # The block buffers are allocated once: fresh multi-megabyte arrays per block cost page
    # faults that took as long as the arithmetic.
    size = min(BLOCK, n_points)
    block_buf = np.empty((size, n_series))
    finite_buf = np.empty((size, n_series), dtype=bool)
    observed_buf = np.empty((size, n_series))
    first_buf = np.empty((size, n_series))
    second_buf = np.empty((size, n_series)) if second is not None else None
    for start in range(0, n_points, BLOCK):
        stop = min(start + BLOCK, n_points)
        steps = stop - start
        block, finite = block_buf[:steps], finite_buf[:steps]
        _transpose_into(block, values, start, stop)
        np.isfinite(block, out=finite)
        # Per step: does every series have a value?
        complete: list[bool] = np.asarray(finite.all(axis=1)).tolist()
        if all(complete):
            observed = block
        else:
            observed = observed_buf[:steps]
            np.copyto(observed, block)
            observed[~finite] = 0.0
        resolution_lean = bool(s.changes_seen.min() >= 1.0 / c.resolution_alpha)
        out_first = first_buf[:steps]
        out_second = second_buf[:steps] if second_buf is not None else None
        for i in range(steps):
            if not lean:
                lean = bool(s.count.min() >= lean_after)
            season = None if buckets is None else s.season[buckets[start + i]]
            rate = float(season_rates[start + i])
            full = complete[i]
            _step(s, rows, observed[i], None if full else finite[i], season, rate, lean)
            _resolution(s, rows, block[i], None if full else finite[i], resolution_lean)
            _evidence(s, rows, lean)
            if out_second is None:
                np.maximum(rows.spike, rows.shift, out=out_first[i])
            else:
                out_first[i] = rows.spike
                out_second[i] = rows.shift
        # Saturate while the block is still in cache.
        first[:, start:stop] = saturate_excess(out_first, out=out_first).T
        if second is not None and out_second is not None:
            second[:, start:stop] = saturate_excess(out_second, out=out_second).T
    return first, second


def saturate_excess(excess: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """``1 - exp(-max(excess, 0)^2)``: 0 up to the onset, then a smooth, fast rise to 1."""
    # clip gives max-then-min's values; the sign of a zero it may differ in is squared away.
    out = np.clip(excess, 0.0, 6.0, out=out)
    np.square(out, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.subtract(1.0, out, out=out)
    return out


# Series per tile when transposing a block: a tile's rows stay in cache while they are read.
_TILE = 1024


def _transpose_into(block: FloatArray, values: FloatArray, start: int, stop: int) -> None:
    """``block[:] = values[:, start:stop].T``, tile by tile: copying the whole transposed
    slice at once reads each source cache line once per time step."""
    for s0 in range(0, values.shape[0], _TILE):
        s1 = s0 + _TILE
        np.copyto(block[:, s0:s1], values[s0:s1, start:stop].T)


def _resolution(s: DetectorState, r: _Rows, x: FloatArray, valid: Any, lean: bool) -> None:
    """Track the sensor's resolution: the typical size of a change between valid readings
    (a running mean over the first changes, then an EWMA). ``valid`` is None when every
    series has a reading."""
    np.subtract(x, s.last_valid, out=r.tmp)
    np.abs(r.tmp, out=r.tmp)
    # NaN (no previous value, or missing now) compares False: no change to learn from.
    np.greater(r.tmp, 0.0, out=r.changed)
    if valid is not None:
        r.changed &= valid
    r.tmp -= s.resolution
    alpha = s.config.resolution_alpha
    if lean:
        r.tmp *= alpha
    else:
        r.tmp *= np.maximum(1.0 / (s.changes_seen + 1.0), alpha)
    if r.changed.all():  # continuous sensors: every series changed
        s.changes_seen += 1.0
        s.resolution += r.tmp
    else:
        s.changes_seen += r.changed
        np.add(s.resolution, r.tmp, out=s.resolution, where=r.changed)
    if valid is None:
        np.copyto(s.last_valid, x)
    else:
        np.copyto(s.last_valid, x, where=valid)


class _Rows:
    """Scratch rows reused by every step, and constant rows (a comparison with a row is
    faster than with a scalar)."""

    def __init__(self, n_series: int, c: Any) -> None:
        self.expected = np.empty(n_series)
        self.damped = np.empty(n_series)
        self.residual = np.empty(n_series)
        self.sigma = np.empty(n_series)
        self.z = np.empty(n_series)
        self.bound = np.empty(n_series)
        self.clipped = np.empty(n_series)
        self.z_clipped = np.empty(n_series)
        self.changed = np.empty(n_series, dtype=bool)
        self.tmp = np.empty(n_series)
        self.weight = np.empty(n_series)
        self.warm = np.ones(n_series)
        self.spike = np.empty(n_series)
        self.shift = np.empty(n_series)
        self.clip_bound = float(c.clip)
        self.clip_high = np.full(n_series, float(c.clip))
        self.clip_low = np.full(n_series, float(-c.clip))
        self.white_shift = np.full(n_series, _white(c.shift_alpha))
        self.white_drift = np.full(n_series, _white(c.drift_alpha))


def _white(alpha: float) -> float:
    """The mean absolute value of the EWMA of white noise: never more sensitive than that."""
    return float(np.sqrt(alpha / (2.0 - alpha)) / MAD_TO_SIGMA)


def _step(
    s: DetectorState,
    r: _Rows,
    x: FloatArray,
    valid: Any,
    season: FloatArray | None,
    season_rate: float,
    lean: bool,
) -> None:
    """One step of the level/trend/scale model. ``valid`` is None when every series has a
    reading (its weight is then 1 everywhere, and multiplying by it is skipped)."""
    c = s.config
    w: FloatArray | None = None
    if valid is not None:
        w = r.weight
        np.copyto(w, valid)
    np.multiply(s.trend, c.trend_damping, out=r.damped)
    np.add(s.level, r.damped, out=r.expected)
    if season is not None:
        r.expected += season
    np.subtract(x, r.expected, out=r.residual)
    if w is not None:
        r.residual *= w
    np.multiply(s.scale, MAD_TO_SIGMA, out=r.sigma)
    # Quantised series (whole degrees, counts) sit still between steps: one step of the
    # sensor's resolution is never an anomaly on its own. The tiny constant keeps 0 / 0 out.
    np.multiply(s.resolution, RESOLUTION_TO_SIGMA, out=r.tmp)
    r.tmp += 1e-300
    np.maximum(r.sigma, r.tmp, out=r.sigma)
    np.divide(r.residual, r.sigma, out=r.z)
    if r.clip_bound > 0:
        # One pass; the same values as max then min while the bounds are not zero.
        np.clip(r.z, -r.clip_bound, r.clip_bound, out=r.z_clipped)
    else:
        np.maximum(r.z, r.clip_low, out=r.z_clipped)
        np.minimum(r.z_clipped, r.clip_high, out=r.z_clipped)
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
    # trend * damping + clipped * beta (the damped trend is the one computed above).
    np.multiply(r.clipped, c.trend_beta if lean else c.trend_beta * r.warm, out=r.tmp)
    np.add(r.damped, r.tmp, out=s.trend)
    np.multiply(r.clipped, level_rate, out=r.tmp)
    np.add(r.expected, r.tmp, out=s.level)
    if season is not None:
        s.level -= season
        np.multiply(r.clipped, season_rate if lean else season_rate * r.warm, out=r.tmp)
        season += r.tmp
    np.abs(r.clipped, out=r.tmp)
    r.tmp -= s.scale
    r.tmp *= scale_rate
    if w is not None:
        r.tmp *= w
        s.scale += r.tmp
        s.count += w
    else:
        s.scale += r.tmp
        s.count += 1.0


def _evidence(s: DetectorState, r: _Rows, lean: bool) -> None:
    """Spike excess from ``|z|``; shift excess from EWMAs of the clipped z over their spread."""
    c = s.config
    spike, shift = r.spike, r.shift
    np.abs(r.z, out=spike)
    if not lean:
        spike *= r.warm
    spike -= c.spike_onset
    spike *= 1.0 / c.spike_width
    _channel(s.evidence, s.spread, r.z_clipped, r.tmp, shift, c.shift_alpha, r.white_shift, c)
    _channel(s.drift, s.drift_spread, r.z_clipped, r.tmp, r.bound, c.drift_alpha, r.white_drift, c)
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
    white: FloatArray,
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
    # Never more sensitive than for white noise (``white``, see _white).
    np.maximum(spread, white, out=tmp)
    out /= tmp
