"""Time until a series crosses a known limit (trip point, disk capacity, memory limit).

Two vectorised forecasters over many series at once (series x time, regular sampling, NaN for
missing points), both looking only at the trailing window of each series:

* :func:`predict_linear_time_to_threshold` is Prometheus' ``predict_linear``: a least-squares
  line over a fixed window, extrapolated to the limit. It is the baseline ops use today.
* :func:`forecast_time_to_threshold` fits, over a longer window, an exponential approach to an
  equilibrium (the first-order response of a temperature to a failed fan or a step in load,
  the top of a daily cycle) on a grid of time constants. Where that fits clearly better than a
  line it extrapolates the damped path, which levels off at the fitted equilibrium; otherwise
  it extrapolates the recent least-squares line (disk fill, memory leak). The distance to the
  limit is measured from the series' typical upward swing around the line (garbage-collection
  sawtooth, load bursts), since the limit is touched by the peaks before the mean. The
  interval comes from the standard errors of the slope and level (or equilibrium); ``inf``
  means no crossing within ``max_horizon_seconds`` (heading away, or levelling off short of
  the limit), and ``crossing_expected`` is False too when the trend towards the limit is not
  significant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from models._common import BoolArray, FloatArray, as_2d, per_series

WEEK_SECONDS = 7 * 86_400.0
AGREE_Z = 0.0
SWING_SMOOTHING = 3
# Lags (points) at which a temperature may follow its load: heat sinks take minutes.
LOAD_LAGS_POINTS = (1.0, 3.0, 6.0)
LOAD_REFERENCE_QUANTILE = 0.9
MAX_AUTOCORRELATION = 0.95  # lag-1 autocorrelation counted at most (20x fewer points)
# Time constants tried for an exponential approach, as multiples of the window length.
APPROACH_TAU_FACTORS = (0.1, 0.15, 0.22, 0.33, 0.5, 0.75, 1.1, 1.6, 2.4)


@dataclass(frozen=True)
class LineFit:
    """Weighted least-squares line per series, time measured in points from the window end."""

    slope: FloatArray
    level_at_end: FloatArray
    slope_se: FloatArray
    level_se: FloatArray
    n_points: FloatArray


@dataclass(frozen=True)
class TimeToThreshold:
    """Per-series forecast of the time (seconds) until the limit is crossed.

    ``time_to_threshold`` is the point estimate, ``lower``/``upper`` the interval (``upper``
    may be ``inf``); ``inf`` when the path does not reach the limit within the max horizon, 0
    when the limit is already crossed. ``crossing_expected`` is True only for a finite point
    estimate backed by a significant trend towards the limit. ``slope`` is per second at the
    end of the window, ``time_constant`` the fitted damping time constant in seconds (``inf``
    for a linear trend).
    """

    time_to_threshold: FloatArray
    lower: FloatArray
    upper: FloatArray
    crossing_expected: BoolArray
    already_crossed: BoolArray
    level: FloatArray
    slope: FloatArray
    time_constant: FloatArray

    def to_dict(self) -> dict[str, list[float] | list[bool]]:
        """Plain lists (``inf`` kept as float('inf')) for persistence."""
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}

    def will_cross_within(self, horizon_seconds: float) -> BoolArray:
        """The "will cross within horizon" call, made when even the late end of the interval
        (``upper``) falls inside the horizon: an alert that a person or an orchestrator acts
        on should not fire on the upswing of a daily cycle."""
        return np.asarray(self.crossing_expected & (self.upper <= horizon_seconds), dtype=bool)


@dataclass(frozen=True)
class _Regression:
    """``y = intercept + coef * x`` per series, with what the standard errors need."""

    coef: FloatArray
    intercept: FloatArray
    rss: FloatArray
    sxx: FloatArray
    x_mean: FloatArray
    n: FloatArray


class _CentredRows:
    """A window's rows for several regressions on shared regressors: the rows without gaps
    are centred once (their mean and sum of squares do not depend on the regressor), rows
    with gaps take the masked path."""

    def __init__(self, window: FloatArray) -> None:
        self.window = window
        self.complete = np.isfinite(window).all(axis=1)
        self.every = bool(self.complete.all())
        dense = window if self.every else window[self.complete]
        self.mean = dense.mean(axis=1)
        # Centre the values too: metrics like bytes are large and the sums would lose precision.
        self.dy = dense - self.mean[:, np.newaxis]
        self.syy = np.einsum("ij,ij->i", self.dy, self.dy)

    def regress(self, x: FloatArray) -> _Regression:
        """Least squares of each row on the shared regressor ``x`` (NaN ignored)."""
        if self.every:
            return self._regress_complete(x)
        if not self.complete.any():
            return _regress_masked(self.window, x)
        fast = self._regress_complete(x)
        slow = _regress_masked(self.window[~self.complete], x)
        merged = {}
        for name in ("coef", "intercept", "rss", "sxx", "x_mean", "n"):
            column = np.empty(self.window.shape[0])
            column[self.complete], column[~self.complete] = getattr(fast, name), getattr(slow, name)
            merged[name] = column
        return _Regression(**merged)

    def _regress_complete(self, x: FloatArray) -> _Regression:
        """The common case, rows without gaps: one matrix-vector product per regressor."""
        n_rows, n_cols = self.dy.shape
        dx = x - x.mean()
        sxx = float(dx @ dx)
        sxy = self.dy @ dx
        with np.errstate(all="ignore"):
            coef = sxy / sxx if sxx > 0 else np.full(n_rows, np.nan)
            rss = np.maximum(self.syy - coef * sxy, 0.0)
        return _Regression(
            coef=np.asarray(coef, dtype=np.float64),
            intercept=self.mean - coef * x.mean(),
            rss=np.asarray(rss, dtype=np.float64),
            sxx=np.full(n_rows, sxx),
            x_mean=np.full(n_rows, float(x.mean())),
            n=np.full(n_rows, float(n_cols)),
        )


def _regress_masked(window: FloatArray, x: FloatArray) -> _Regression:
    mask = np.isfinite(window)
    w = mask.astype(np.float64)
    n = w.sum(axis=1)
    safe_n = np.maximum(n, 1.0)
    x_mean = (w * x).sum(axis=1) / safe_n
    y_mean = np.where(mask, window, 0.0).sum(axis=1) / safe_n
    dx = (x - x_mean[:, np.newaxis]) * w
    # Centre the values too: metrics like bytes are large and the sums would lose precision.
    dy = np.where(mask, window - y_mean[:, np.newaxis], 0.0)
    sxx = (dx * dx).sum(axis=1)
    with np.errstate(all="ignore"):
        coef = np.where(sxx > 0, (dx * dy).sum(axis=1) / sxx, np.nan)
        residual = dy - coef[:, np.newaxis] * dx
        rss = (residual * residual * w).sum(axis=1)
    return _Regression(coef, y_mean - coef * x_mean, rss, sxx, x_mean, n)


def fit_lines(window: FloatArray, rows: _CentredRows | None = None) -> LineFit:
    """Least-squares line through each row of ``window`` (NaN ignored), vectorised.

    Time is in points, 0 at the last column, so ``level_at_end`` is the fitted value now. The
    standard errors allow for autocorrelated residuals (see :func:`_autocorrelation_factor`).
    ``rows``: the same window already centred, when other fits share it.
    """
    t = np.arange(1 - window.shape[1], 1, dtype=np.float64)
    fit = (rows or _CentredRows(window)).regress(t)
    safe_n = np.maximum(fit.n, 1.0)
    factor = _autocorrelation_factor(window, t, fit)
    with np.errstate(all="ignore"):
        variance = fit.rss / np.maximum(fit.n - 2.0, 1.0) * factor
        slope_se = np.sqrt(variance / fit.sxx)
        level_se = np.sqrt(variance * (1.0 / safe_n + fit.x_mean**2 / fit.sxx))
    return LineFit(fit.coef, fit.intercept, slope_se, level_se, fit.n)


def _autocorrelation_factor(window: FloatArray, t: FloatArray, fit: _Regression) -> FloatArray:
    """Variance inflation ``(1 + rho) / (1 - rho)`` for residuals with lag-1 autocorrelation rho.

    Ordinary least squares takes residuals for independent noise. Metrics of physical systems
    wander instead (a temperature follows a load that drifts for a quarter of an hour, memory
    saws with garbage collection): a line through a window of such a series looks far more
    certain than it is, and a passing excursion reads as a significant trend. Counting only the
    effectively independent points (an AR(1) approximation) keeps the interval honest.
    """
    with np.errstate(all="ignore"):
        residual = window - (fit.intercept[:, np.newaxis] + fit.coef[:, np.newaxis] * t)
        filled = np.where(np.isfinite(residual), residual, 0.0)
        lagged = (filled[:, 1:] * filled[:, :-1]).sum(axis=1)
        energy = (filled * filled).sum(axis=1)
        rho = np.clip(np.where(energy > 0, lagged / energy, 0.0), 0.0, MAX_AUTOCORRELATION)
    return np.asarray((1.0 + rho) / (1.0 - rho), dtype=np.float64)


def predict_linear_time_to_threshold(
    values: Any,
    threshold: Any,
    *,
    interval_seconds: float = 60.0,
    window_points: int = 60,
    rising: Any = True,
) -> FloatArray:
    """Prometheus ``predict_linear``: seconds until the least-squares line hits the limit.

    The line is fitted over the last ``window_points`` samples (1 h of 1-minute samples by
    default) and extrapolated from its value now. A line heading away from the limit, or
    flat, gives ``inf``; a fitted value already past the limit gives 0. ``rising=False``
    (scalar or per series) makes the limit a floor.
    """
    matrix = as_2d(values)
    n_series = matrix.shape[0]
    limit = per_series(threshold, n_series)
    fit = fit_lines(matrix[:, -window_points:])
    direction = np.where(np.broadcast_to(np.asarray(rising, dtype=bool), (n_series,)), 1.0, -1.0)
    with np.errstate(all="ignore"):
        distance = (limit - fit.level_at_end) * direction
        rate = fit.slope * direction
        points = np.where(distance <= 0, 0.0, np.where(rate > 0, distance / rate, np.inf))
    points = np.where(np.isfinite(fit.slope), points, np.inf)
    return np.asarray(np.maximum(points, 0.0) * interval_seconds, dtype=np.float64)


def forecast_time_to_threshold(
    values: Any,
    threshold: Any,
    *,
    interval_seconds: float = 60.0,
    window_points: int = 120,
    linear_window_points: int = 60,
    rising: Any = True,
    max_horizon_seconds: float = WEEK_SECONDS,
    confidence_z: float = 1.64,
    significance_z: float = 2.0,
    min_improvement: float = 0.9,
    excursion_weight: float = 1.0,
    load: Any = None,
) -> TimeToThreshold:
    """Forecast when each series crosses its limit, with an interval (see the module doc).

    ``values`` is (series x time) sampled every ``interval_seconds`` (NaN for missing points);
    only the last ``window_points`` are used. ``threshold`` and ``rising`` are scalars or per
    series: ``rising=False`` means the limit is a floor (free bytes falling towards zero).
    ``load`` (same shape; rows of NaN where unknown) is what drives each series, such as a
    device's power draw for its temperatures: the forecast then follows the series as if held
    at its recent high load (:func:`adjust_for_load`), so a rise that the load explains is not
    taken for a trend towards the limit.
    """
    matrix = as_2d(values)
    n_series = matrix.shape[0]
    sign = np.where(np.broadcast_to(np.asarray(rising, dtype=bool), (n_series,)), 1.0, -1.0)
    window = matrix[:, -window_points:]
    if load is not None:
        window = adjust_for_load(window, as_2d(load)[:, -window_points:])
    window = window * sign[:, np.newaxis]
    limit = per_series(threshold, n_series) * sign
    rows = _CentredRows(window)
    recent = _linear_trend(window, linear_window_points, rows)
    approach = fit_approach(window, min_improvement, rows)
    with np.errstate(all="ignore"):
        # Linear trend: the line through the most recent points, from its value now.
        distance = (
            limit
            - recent.level_at_end
            - excursion_weight * _swing(window[:, -linear_window_points:], recent)
        )
        margin = confidence_z * recent.slope_se
        level_margin = confidence_z * recent.level_se
        point = _points_to_limit(distance, recent.slope, np.inf)
        earliest = _points_to_limit(distance - level_margin, recent.slope + margin, np.inf)
        latest = _points_to_limit(distance + level_margin, recent.slope - margin, np.inf)
        significant = recent.slope > significance_z * recent.slope_se
        # Exponential approach to an equilibrium, where it fits clearly better than a line.
        chosen = approach.chosen
        a_margin = confidence_z * approach.asymptote_se
        now = approach.level_now
        tau = np.where(chosen, approach.tau, np.inf)
        point = np.where(chosen, _points_to_equilibrium(limit, now, approach.asymptote, tau), point)
        earliest = np.where(
            chosen, _points_to_equilibrium(limit, now, approach.asymptote + a_margin, tau), earliest
        )
        latest = np.where(
            chosen, _points_to_equilibrium(limit, now, approach.asymptote - a_margin, tau), latest
        )
        significant = np.where(chosen, approach.significant, significant)
        level = np.where(chosen, now, recent.level_at_end)
        slope = np.where(chosen, (approach.asymptote - now) / tau, recent.slope)
    crossed = np.asarray(limit - level <= 0.0, dtype=bool)
    max_points = max_horizon_seconds / interval_seconds
    point, earliest, latest = (
        np.where(crossed, 0.0, np.where(p > max_points, np.inf, p))
        for p in (point, earliest, latest)
    )
    earliest = np.minimum(earliest, point)
    latest = np.maximum(latest, point)
    unknown = ~np.isfinite(recent.slope)
    point = np.where(unknown, np.inf, point)
    return TimeToThreshold(
        time_to_threshold=point * interval_seconds,
        lower=np.where(unknown, np.inf, earliest) * interval_seconds,
        upper=np.where(unknown, np.inf, latest) * interval_seconds,
        crossing_expected=np.asarray(np.isfinite(point) & (significant | crossed), dtype=bool),
        already_crossed=crossed & ~unknown,
        level=level * sign,
        slope=slope * sign / interval_seconds,
        time_constant=tau * interval_seconds,
    )


def adjust_for_load(
    window: FloatArray,
    load: FloatArray,
    *,
    lags: tuple[float, ...] = LOAD_LAGS_POINTS,
    reference_quantile: float = LOAD_REFERENCE_QUANTILE,
    min_points: int = 20,
) -> FloatArray:
    """Each series as if its load had stayed at the high end of its window.

    A temperature is ambient plus thermal resistance times power: it climbs when the load
    climbs and falls back with it, and a line through such a climb points at the trip point
    for no reason. Per series, the gain ``b`` (value per unit of load, the load smoothed
    exponentially over each of ``lags`` points, the best fit kept) is estimated from the
    minute-to-minute changes of both, so that a slow drift (dust building up, a failing fan)
    is not mistaken for a response to a load that happened to rise at the same time. Where
    more load means a higher value (b > 0), the load's part is replaced by its value at the
    ``reference_quantile`` of the window's load. What is left rises only for reasons other
    than the load. Rows without a usable load (NaN, flat, fewer than ``min_points`` points)
    are returned unchanged.
    """
    y = np.asarray(window, dtype=np.float64)
    x = np.asarray(load, dtype=np.float64)
    out = y.copy()
    if y.shape[0] == 0 or x.shape != y.shape:
        return out
    best_rss = np.full(y.shape[0], np.inf)
    dy = np.diff(y, axis=1)
    for lag in lags:
        smooth = _ema(x, lag)
        dx = np.diff(smooth, axis=1)
        w = np.isfinite(dy) & np.isfinite(dx)
        dyw, dxw = np.where(w, dy, 0.0), np.where(w, dx, 0.0)
        with np.errstate(all="ignore"):
            sxx = (dxw * dxw).sum(axis=1)
            gain = (dxw * dyw).sum(axis=1) / sxx
            rss = ((dyw - gain[:, np.newaxis] * dxw) ** 2).sum(axis=1)
        usable = (w.sum(axis=1) >= min_points) & (sxx > 0) & (gain > 0) & (rss < best_rss)
        if not usable.any():
            continue
        known = np.isfinite(y) & np.isfinite(smooth)
        reference = _row_quantile(np.where(known, smooth, np.nan), reference_quantile)
        with np.errstate(all="ignore"):
            adjusted = y - gain[:, np.newaxis] * (smooth - reference[:, np.newaxis])
        out = np.where(
            usable[:, np.newaxis] & known, adjusted, np.where(usable[:, np.newaxis], y, out)
        )
        best_rss = np.where(usable, rss, best_rss)
    return out


def _ema(x: FloatArray, points: float) -> FloatArray:
    """Exponential moving average along each row over ``points``; gaps hold the average."""
    alpha = 1.0 - np.exp(-1.0 / points)
    out = np.empty_like(x)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without any load
        first = np.nanmean(x[:, : max(1, int(points))], axis=1)
    acc = np.where(np.isfinite(first), first, np.nan)
    for j in range(x.shape[1]):
        value = x[:, j]
        acc = np.where(
            np.isfinite(value), np.where(np.isfinite(acc), acc + alpha * (value - acc), value), acc
        )
        out[:, j] = acc
    return out


def _row_quantile(x: FloatArray, q: float) -> FloatArray:
    """``nanquantile`` along rows (lower interpolation), without NumPy's per-row NaN path."""
    ordered = np.sort(x, axis=1)  # NaN sort last
    count = np.isfinite(x).sum(axis=1)
    k = np.clip(np.floor(q * (count - 1)).astype(np.int64), 0, x.shape[1] - 1)
    values = ordered[np.arange(x.shape[0]), k]
    return np.asarray(np.where(count > 0, values, np.nan), dtype=np.float64)


def _swing(window: FloatArray, line: LineFit) -> FloatArray:
    """Typical upward swing of the series around its line, white noise smoothed out.

    A sawtooth of garbage collection or bursts of load touch the limit before the trend line
    does; the limit is reached when the swing does, not the mean.
    """
    t = np.arange(1 - window.shape[1], 1, dtype=np.float64)[np.newaxis, :]
    residual = window - (line.level_at_end[:, np.newaxis] + line.slope[:, np.newaxis] * t)
    filled = np.where(np.isfinite(residual), residual, 0.0)
    # Moving average over SWING_SMOOTHING points, through a cumulative sum.
    total = np.cumsum(filled, axis=1)
    total = np.hstack([np.zeros((total.shape[0], 1)), total])
    k = SWING_SMOOTHING
    smooth = (total[:, k:] - total[:, :-k]) / k
    return np.asarray(np.maximum(np.quantile(smooth, 0.9, axis=1), 0.0), dtype=np.float64)


def _linear_trend(
    window: FloatArray, recent_points: int, rows: _CentredRows | None = None
) -> LineFit:
    """The line over the whole window when both halves agree on the slope, else the recent one.

    A longer line is less noisy; but after a change of slope (a leak or a runaway starting
    inside the window) only the recent points describe the trend.
    """
    half = window.shape[1] // 2
    early, late = fit_lines(window[:, :half]), fit_lines(window[:, half:])
    whole = fit_lines(window, rows)
    # The recent points are often exactly the later half (the default windows).
    same = window.shape[1] - half == min(recent_points, window.shape[1])
    recent = late if same else fit_lines(window[:, -recent_points:])
    with np.errstate(all="ignore"):
        drift = np.abs(early.slope - late.slope) / np.hypot(early.slope_se, late.slope_se)
    agree = drift < AGREE_Z
    pick = {
        name: np.where(agree, getattr(whole, name), getattr(recent, name))
        for name in ("slope", "level_at_end", "slope_se", "level_se", "n_points")
    }
    return LineFit(**pick)


@dataclass(frozen=True)
class ApproachFit:
    """Best ``y = asymptote + (level_now - asymptote) * exp(-t / tau)`` per series (t <= 0)."""

    chosen: BoolArray
    tau: FloatArray
    asymptote: FloatArray
    asymptote_se: FloatArray
    level_now: FloatArray
    significant: BoolArray


def fit_approach(
    window: FloatArray, min_improvement: float = 0.9, rows: _CentredRows | None = None
) -> ApproachFit:
    """Fit an exponential approach to an equilibrium over a grid of time constants.

    This is the first-order response of a temperature to a step in load or cooling, and the
    shape of the top of a daily cycle. ``chosen`` where it rises towards an equilibrium and
    leaves at least ``min_improvement`` less squared error than a straight line does.
    ``rows``: the same window already centred, when other fits share it.
    """
    rows = rows or _CentredRows(window)
    n_cols = window.shape[1]
    t = np.arange(1 - n_cols, 1, dtype=np.float64)
    line = rows.regress(t)
    best_rss = np.full(window.shape[0], np.inf)
    best = {"tau": np.full(window.shape[0], np.inf)}
    for factor in APPROACH_TAU_FACTORS:
        tau = factor * n_cols
        fit = rows.regress(np.exp(-t / tau))
        # exp(-t / tau) grows into the past, so a rise towards the asymptote has coef < 0.
        better = (fit.rss < best_rss) & (fit.coef < 0)
        best_rss = np.where(better, fit.rss, best_rss)
        with np.errstate(all="ignore"):
            variance = fit.rss / np.maximum(fit.n - 2.0, 1.0)
            values = {
                "tau": np.full(window.shape[0], tau),
                "asymptote": fit.intercept,
                "asymptote_se": np.sqrt(variance * (1.0 / fit.n + fit.x_mean**2 / fit.sxx)),
                "level_now": fit.intercept + fit.coef,
                "coef_z": -fit.coef / np.sqrt(variance / fit.sxx),
            }
        for key, value in values.items():
            best[key] = np.where(better, value, best.get(key, value))
    chosen = np.isfinite(best_rss) & (best_rss < line.rss * (1.0 - min_improvement))
    return ApproachFit(
        chosen=np.asarray(chosen, dtype=bool),
        tau=best["tau"],
        asymptote=best["asymptote"],
        asymptote_se=best["asymptote_se"],
        level_now=best["level_now"],
        significant=np.asarray(best["coef_z"] > 2.0, dtype=bool),
    )


def _points_to_equilibrium(
    limit: FloatArray, now: FloatArray, asymptote: FloatArray, tau: FloatArray
) -> FloatArray:
    """Points until ``asymptote + (now - asymptote) * exp(-h / tau)`` reaches ``limit``."""
    with np.errstate(all="ignore"):
        fraction = (asymptote - limit) / (asymptote - now)
        points = np.where((asymptote > limit) & (fraction > 0), -tau * np.log(fraction), np.inf)
    return np.asarray(np.where(now >= limit, 0.0, points), dtype=np.float64)


def _points_to_limit(distance: FloatArray, slope: FloatArray, tau: Any) -> FloatArray:
    """Points until ``level + slope * tau * (1 - exp(-h / tau))`` covers ``distance``.

    With ``tau = inf`` this is the straight line ``distance / slope``. ``inf`` when the slope
    is not towards the limit or the damped path levels off short of it.
    """
    linear = np.where(slope > 0, distance / slope, np.inf)
    reach = slope * tau
    fraction = distance / reach
    damped = np.where((slope > 0) & (fraction < 1.0), -tau * np.log1p(-fraction), np.inf)
    result = np.where(np.isfinite(tau), damped, linear)
    return np.asarray(np.where(distance <= 0, 0.0, result), dtype=np.float64)
