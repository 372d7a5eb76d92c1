"""The per-point recurrence of the anomaly detector, compiled with numba.

Each point depends on the state the previous point left, so the recurrence is a loop over time.
The loop runs over tiles of series: a tile's state stays in L1 cache, and each block of time
steps is transposed into a small time-major buffer, so the innermost loop runs across the
series of the tile and vectorises (SIMD over series). Every operation is IEEE arithmetic in the
same order for every series and every split of a history into batches (no fast-math, no fused
multiply-add), so scores do not depend on how a history or a fleet is cut into batches.

A step for a series still in warm-up uses running means (1/n rates), no clipping and no
evidence; past warm-up the same formulas reduce exactly to the fixed rates, so there is one
code path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numba
import numpy as np

from models._common import FloatArray

if TYPE_CHECKING:
    from models.anomaly import DetectorState

SECONDS_PER_DAY = 86_400.0
# E|X| = sqrt(2/pi) * sigma for a normal variable: turns a mean absolute deviation into a sigma.
MAD_TO_SIGMA = 1.2533
# A sigma floor of half the typical change between readings.
RESOLUTION_TO_SIGMA = 0.5
# Series per tile: the tile's state rows (11 x 8 bytes per series) and its time-major buffers
# stay in L1/L2 cache.
TILE = 32
# Time steps per transposed block.
BLOCK = 128

_JIT_OPTIONS: dict[str, Any] = {"nogil": True, "error_model": "numpy", "boundscheck": False}


def _jit(function: Callable[..., Any]) -> Any:
    """Compile with IEEE arithmetic (no fast-math) and NaN on 0 / 0, cached beside this file
    (or in ``NUMBA_CACHE_DIR``, or the user's cache). Where none of those is writable (a
    read-only image run as an unprivileged user), numba refuses to cache; the kernel is then
    compiled in each process instead of failing the import."""
    try:
        return numba.njit(cache=True, **_JIT_OPTIONS)(function)
    except RuntimeError:
        return numba.njit(**_JIT_OPTIONS)(function)


class Recurrence(NamedTuple):
    """Scores in [0, 1] of one batch (series x time) and per-series counts over it."""

    first: FloatArray  # spike scores with ``components``, else max(spike, shift)
    second: FloatArray | None  # shift scores with ``components``, else None
    repeated: FloatArray  # valid points equal to the value before them (``last_raw`` first)
    changed: FloatArray  # valid points that differ from the value before them
    missing: FloatArray  # points that are NaN or infinite


def run_recurrence(
    s: DetectorState, values: FloatArray, seconds: FloatArray | None, *, components: bool
) -> Recurrence:
    """Advance the level/trend/scale/evidence state over ``values`` (series x time), in place.

    Also counts, per series, the repeats, changes and missing points the stuck and dropout
    detectors start from, so that they need no pass of their own over series without any.
    ``s.last_raw`` is read, not updated.
    """
    c = s.config
    n_series, n_points = values.shape
    if seconds is not None:
        width = SECONDS_PER_DAY / c.season_buckets
        buckets = ((seconds % SECONDS_PER_DAY) // width).astype(np.int64)
        # The daily profile learns at a rate per day, whatever the sampling interval: each
        # point moves its bucket in proportion to the share of the bucket it covers.
        elapsed = np.diff(seconds, prepend=s.last_time)
        covered = np.clip(np.nan_to_num(elapsed, nan=0.0), 0.0, width) / width
        season_rates = c.season_alpha * covered
        season = s.season
    else:
        # No clock, no daily profile: one bucket of zeros that never learns (rate 0).
        buckets = np.zeros(n_points, dtype=np.int64)
        season_rates = np.zeros(n_points)
        season = np.zeros((1, n_series))
    first = np.empty((n_series, n_points))
    second = np.empty((n_series, n_points)) if components else first
    counts = np.zeros((3, n_series))
    params = (
        float(c.trend_damping),
        float(c.trend_beta),
        float(c.level_alpha),
        float(c.scale_alpha),
        float(c.clip),
        float(c.warmup),
        float(c.resolution_alpha),
        float(c.spike_onset),
        1.0 / c.spike_width,
        float(c.shift_alpha),
        float(c.drift_alpha),
        float(c.shift_spread_alpha),
        c.shift_onset * MAD_TO_SIGMA,
        1.0 / (c.shift_width * MAD_TO_SIGMA),
        _white(c.shift_alpha),
        _white(c.drift_alpha),
    )
    state = (
        s.level,
        s.trend,
        s.scale,
        s.count,
        s.evidence,
        s.spread,
        s.drift,
        s.drift_spread,
        s.resolution,
        s.last_valid,
        s.changes_seen,
    )
    for array in (*state, season):
        if not (array.flags.c_contiguous and array.flags.writeable):
            raise ValueError("detector state arrays must be writeable and C-contiguous")
    _kernel(
        np.ascontiguousarray(values, dtype=np.float64),
        buckets,
        season_rates,
        season,
        state,
        params,
        np.array(s.last_raw, dtype=np.float64),
        counts,
        first,
        second,
        components,
    )
    return Recurrence(first, second if components else None, counts[0], counts[1], counts[2])


def _white(alpha: float) -> float:
    """The mean absolute value of the EWMA of white noise: never more sensitive than that."""
    return float(np.sqrt(alpha / (2.0 - alpha)) / MAD_TO_SIGMA)


@_jit
def _maximum(a: float, b: float) -> float:
    """``np.maximum`` for two floats: NaN if either is NaN."""
    return a if (a >= b or a != a) else b


@_jit
def _saturate(excess: float) -> float:
    """``1 - exp(-min(excess, 6)^2)`` above 0, else 0 (NaN stays NaN): a score that is 0 up
    to the onset, then rises smoothly and fast to 1."""
    if excess > 0.0:
        capped = min(excess, 6.0)
        return 1.0 - math.exp(-(capped * capped))
    if excess != excess:
        return excess
    # Most points: nothing in excess, and no exp to evaluate.
    return 0.0


@_jit
def _kernel(
    values: FloatArray,
    buckets: Any,
    season_rates: FloatArray,
    season: FloatArray,
    state: tuple[FloatArray, ...],
    params: tuple[float, ...],
    previous_raw: FloatArray,
    counts: FloatArray,
    first: FloatArray,
    second: FloatArray,
    components: bool,
) -> None:
    (
        damping,
        beta,
        level_alpha,
        scale_alpha,
        clip,
        warmup,
        resolution_alpha,
        spike_onset,
        inv_spike_width,
        shift_alpha,
        drift_alpha,
        spread_alpha,
        shift_offset,
        inv_shift_width,
        white_shift,
        white_drift,
    ) = params
    level, trend, scale, count, evidence, spread, drift, drift_spread = state[:8]
    resolution, last_valid, changes_seen = state[8:]
    repeat_counts, change_counts, missing_counts = counts[0], counts[1], counts[2]
    n_series, n_points = values.shape
    block_in = np.empty((BLOCK, TILE))
    block_first = np.empty((BLOCK, TILE))
    block_second = np.empty((BLOCK, TILE))
    for s0 in range(0, n_series, TILE):
        s1 = min(s0 + TILE, n_series)
        width = s1 - s0
        # Views per tile: indices into them are plain loop counters, which the vectoriser
        # can follow (an index such as s0 + k cannot be, for numba's negative-index check).
        level_t, trend_t, scale_t = level[s0:s1], trend[s0:s1], scale[s0:s1]
        count_t, evidence_t, spread_t = count[s0:s1], evidence[s0:s1], spread[s0:s1]
        drift_t, drift_spread_t = drift[s0:s1], drift_spread[s0:s1]
        resolution_t, last_valid_t = resolution[s0:s1], last_valid[s0:s1]
        changes_seen_t = changes_seen[s0:s1]
        previous_raw_t = previous_raw[s0:s1]
        repeated_t, changed_t = repeat_counts[s0:s1], change_counts[s0:s1]
        missing_t = missing_counts[s0:s1]
        for t0 in range(0, n_points, BLOCK):
            t1 = min(t0 + BLOCK, n_points)
            steps = t1 - t0
            for k in range(width):
                row = values[s0 + k, t0:t1]
                for t in range(steps):
                    block_in[t, k] = row[t]
            for t in range(steps):
                # One contiguous row of the daily profile per step.
                season_t = season[buckets[t0 + t], s0:s1]
                season_rate = season_rates[t0 + t]
                for k in range(width):
                    x = block_in[t, k]
                    valid = np.isfinite(x)
                    w = 1.0 if valid else 0.0
                    observed = x if valid else 0.0
                    n = count_t[k]
                    # Level/trend/scale: a damped local trend with Huber-clipped updates.
                    damped = trend_t[k] * damping
                    seasonal = season_t[k]
                    expected = level_t[k] + damped + seasonal
                    residual = (observed - expected) * w
                    # Quantised series (whole degrees, counts) sit still between steps: one
                    # step of the sensor's resolution is never an anomaly on its own. The tiny
                    # constant keeps 0 / 0 out.
                    sigma = _maximum(
                        scale_t[k] * MAD_TO_SIGMA, resolution_t[k] * RESOLUTION_TO_SIGMA + 1e-300
                    )
                    z = residual / sigma
                    z_clipped = -clip if z < -clip else z
                    z_clipped = clip if z_clipped > clip else z_clipped
                    # Warm-up: no clipping (the scale is not known yet), no evidence, running
                    # means (1/n) that reach the fixed rates by the end of it.
                    warm = 1.0 if n >= warmup else 0.0
                    clipped = z_clipped * sigma if n >= warmup else residual
                    z_clipped = z_clipped * warm
                    running = 1.0 / (n + 1.0)
                    trend_t[k] = damped + clipped * (beta * warm)
                    level_t[k] = expected + clipped * _maximum(running, level_alpha) - seasonal
                    season_t[k] = seasonal + clipped * (season_rate * warm)
                    known_scale = scale_t[k]
                    scale_t[k] = (
                        known_scale
                        + (abs(clipped) - known_scale) * _maximum(running, scale_alpha) * w
                    )
                    count_t[k] = n + w
                    # The sensor's resolution: the typical size of a change between valid
                    # readings (a running mean over the first changes, then an EWMA).
                    previous = last_valid_t[k]
                    change = abs(x - previous)
                    changed = valid and change > 0.0
                    rate = _maximum(1.0 / (changes_seen_t[k] + 1.0), resolution_alpha)
                    known_step = resolution_t[k]
                    resolution_t[k] = (
                        known_step + (change - known_step) * rate if changed else known_step
                    )
                    changes_seen_t[k] = changes_seen_t[k] + (1.0 if changed else 0.0)
                    last_valid_t[k] = x if valid else previous
                    # Spike excess from |z|; shift excess from a fast and a slow EWMA of the
                    # clipped z, each over its own usual spread, never more sensitive than
                    # for white noise.
                    spike = (abs(z) * warm - spike_onset) * inv_spike_width
                    fast = evidence_t[k] + (z_clipped - evidence_t[k]) * shift_alpha
                    evidence_t[k] = fast
                    fast_size = abs(fast)
                    fast_spread = spread_t[k] + (fast_size - spread_t[k]) * spread_alpha
                    spread_t[k] = fast_spread
                    slow = drift_t[k] + (z_clipped - drift_t[k]) * drift_alpha
                    drift_t[k] = slow
                    slow_size = abs(slow)
                    slow_spread = drift_spread_t[k] + (slow_size - drift_spread_t[k]) * spread_alpha
                    drift_spread_t[k] = slow_spread
                    shift = _maximum(
                        fast_size / _maximum(fast_spread, white_shift),
                        slow_size / _maximum(slow_spread, white_drift),
                    )
                    shift = (shift - shift_offset) * inv_shift_width
                    block_first[t, k] = spike if components else _maximum(spike, shift)
                    block_second[t, k] = shift
                # Repeats and gaps, for the stuck and dropout detectors (a missing point breaks
                # a run of repeats: NaN equals nothing). A loop of its own: in the one above,
                # these arrays would be too many for the vectoriser's aliasing checks.
                for k in range(width):
                    x = block_in[t, k]
                    w = 1.0 if np.isfinite(x) else 0.0
                    same = (1.0 if x == previous_raw_t[k] else 0.0) * w
                    previous_raw_t[k] = x
                    repeated_t[k] += same
                    changed_t[k] += w - same
                    missing_t[k] += 1.0 - w
            for k in range(width):
                out = first[s0 + k, t0:t1]
                for t in range(steps):
                    out[t] = _saturate(block_first[t, k])
            if components:
                for k in range(width):
                    out = second[s0 + k, t0:t1]
                    for t in range(steps):
                        out[t] = _saturate(block_second[t, k])
