"""Forecast quality against Prometheus' ``predict_linear`` on simulated degradations.

Pure functions: simulate 1-minute series of devices heading for a limit (thermal runaway
towards a trip point, a disk filling, a memory leak) with realistic noise, load bursts and daily
cycles, plus healthy series of the same kinds that never reach their limit; then measure the
error of the predicted time-to-threshold at several lead times before the known crossing, and
the rate of false "will cross within the horizon" calls on the healthy series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import lfilter

from models._common import FloatArray, IntArray
from models.forecast import forecast_time_to_threshold, predict_linear_time_to_threshold

MINUTES_PER_DAY = 1440
DEFAULT_LEADS = (120, 60, 30, 15)


@dataclass(frozen=True)
class Scenario:
    """Simulated series (n x minutes), their limits and, for degradations, crossing minutes.

    ``crossing`` is the first minute at which the noise-free signal reaches the limit (-1 for
    healthy series, which stay below it throughout).
    """

    kind: str
    values: FloatArray
    threshold: FloatArray
    crossing: IntArray


@dataclass(frozen=True)
class ForecastEvaluation:
    """Absolute errors (minutes, predictions capped) per lead time, for both forecasters."""

    leads: tuple[int, ...]
    errors: dict[int, FloatArray]
    baseline_errors: dict[int, FloatArray]
    summary: dict[str, float] = field(default_factory=dict)


def _first_order(signal: FloatArray, tau_minutes: FloatArray) -> FloatArray:
    """Row-wise first-order lag (thermal mass) of ``signal`` with time constants in minutes."""
    out = np.empty_like(signal)
    for i, tau in enumerate(tau_minutes):
        a = 1.0 / (1.0 + float(tau))
        out[i] = lfilter([a], [1.0, a - 1.0], signal[i], zi=[signal[i, 0] * (1.0 - a)])[0]
    return out


def _load_bursts(rng: np.random.Generator, n: int, minutes: int, height: float) -> FloatArray:
    """Random rectangular bursts of load (inference jobs), a few per hour."""
    starts = rng.random((n, minutes)) < 1.0 / 45.0
    lengths = rng.integers(5, 40, size=(n, minutes))
    bursts = np.zeros((n, minutes))
    for i, t in zip(*np.nonzero(starts), strict=True):
        bursts[i, t : t + lengths[i, t]] += rng.uniform(0.3, 1.0) * height
    return bursts


def _daily(rng: np.random.Generator, n: int, minutes: int, amplitude: FloatArray) -> FloatArray:
    phase = rng.uniform(0, MINUTES_PER_DAY, size=(n, 1))
    t = np.arange(minutes)[np.newaxis, :]
    return amplitude[:, np.newaxis] * np.sin(2 * np.pi * (t + phase) / MINUTES_PER_DAY)


def _thermal(rng: np.random.Generator, n: int, minutes: int, degrade: bool) -> tuple[Any, ...]:
    base = rng.uniform(40, 55, n)[:, np.newaxis] + _daily(rng, n, minutes, rng.uniform(2, 6, n))
    load = _first_order(_load_bursts(rng, n, minutes, 3.0), rng.uniform(5, 15, n))
    clean = base + load
    if degrade:
        # A fan fails: the die heads for a new equilibrium far above the trip point.
        onset = rng.integers(200, 700, n)
        t = np.arange(minutes)[np.newaxis, :] - onset[:, np.newaxis]
        tau = rng.uniform(40, 150, n)[:, np.newaxis]
        rise = rng.uniform(25, 45, n)[:, np.newaxis]
        clean = clean + np.where(t > 0, rise * (1 - np.exp(-np.maximum(t, 0) / tau)), 0.0)
        before = np.where(t < 0, clean, -np.inf).max(axis=1)
        threshold = np.maximum(before + 3.0, before + rise[:, 0] * rng.uniform(0.4, 0.8, n))
    else:
        onset = np.full(n, -1)
        threshold = clean.max(axis=1) + rng.uniform(2, 8, n)
    noise = rng.normal(0, 1, (n, minutes)) * rng.uniform(0.2, 0.6, (n, 1))
    return clean, clean + noise, threshold, onset


def _disk(rng: np.random.Generator, n: int, minutes: int, degrade: bool) -> tuple[Any, ...]:
    # Logs grow during the day and are rotated (cut back) every night at a random minute.
    t = np.arange(minutes)[np.newaxis, :]
    rotate_at = rng.integers(0, MINUTES_PER_DAY, (n, 1))
    since_rotation = (t - rotate_at) % MINUTES_PER_DAY
    daily_growth = rng.uniform(0.02, 0.08, (n, 1)) * since_rotation / MINUTES_PER_DAY
    clean = rng.uniform(0.3, 0.7, (n, 1)) + daily_growth
    if degrade:
        onset = rng.integers(100, 500, n)[:, np.newaxis]
        rate = rng.uniform(0.0003, 0.0015, (n, 1))  # fraction of the disk per minute
        busy = 1.0 + 0.4 * np.sin(2 * np.pi * (t + rng.uniform(0, 1440, (n, 1))) / 1440)
        clean = clean + np.cumsum(np.where(t >= onset, rate * busy, 0.0), axis=1)
        threshold = np.full(n, 0.95)
    else:
        onset = np.full((n, 1), -1)
        threshold = np.minimum(clean.max(axis=1) + rng.uniform(0.005, 0.03, n), 0.99)
    noise = rng.normal(0, 0.0005, (n, minutes))
    return clean, clean + noise, threshold, onset[:, 0]


def _memory(rng: np.random.Generator, n: int, minutes: int, degrade: bool) -> tuple[Any, ...]:
    # Garbage collection: a sawtooth of allocations freed every few minutes.
    t = np.arange(minutes)[np.newaxis, :]
    period = rng.integers(5, 20, (n, 1))
    sawtooth = rng.uniform(0.01, 0.04, (n, 1)) * ((t % period) / period)
    busy = _daily(rng, n, minutes, rng.uniform(0.02, 0.06, n))
    clean = rng.uniform(0.35, 0.55, (n, 1)) + sawtooth + busy
    if degrade:
        onset = rng.integers(100, 500, n)[:, np.newaxis]
        leak = rng.uniform(0.0004, 0.0015, (n, 1))
        clean = clean + np.where(t >= onset, leak * (t - onset), 0.0)
        threshold = np.full(n, 0.9)
    else:
        onset = np.full((n, 1), -1)
        threshold = np.minimum(clean.max(axis=1) + rng.uniform(0.01, 0.05, n), 0.99)
    noise = rng.normal(0, 0.003, (n, minutes))
    return clean, clean + noise, threshold, onset[:, 0]


SIMULATORS: dict[str, Callable[[np.random.Generator, int, int, bool], tuple[Any, ...]]] = {
    "thermal_runaway": _thermal,
    "disk_fill": _disk,
    "memory_leak": _memory,
}


def simulate(
    kind: str,
    n: int,
    *,
    degrade: bool,
    seed: int = 0,
    minutes: int = MINUTES_PER_DAY,
    min_lead: int = 150,
) -> Scenario:
    """``n`` series of one kind.

    Degradations keep only series that cross their limit at least ``min_lead`` minutes after
    the degradation starts (so that every lead time evaluated sees it under way) and after
    5 hours of history.
    """
    rng = np.random.default_rng(seed)
    simulator = SIMULATORS[kind]
    if not degrade:
        _, noisy, threshold, _ = simulator(rng, n, minutes, False)
        return Scenario(kind, noisy, threshold, np.full(n, -1, dtype=np.int64))
    kept: list[tuple[FloatArray, float, int]] = []
    while len(kept) < n:
        clean, noisy, threshold, onset = simulator(rng, n, minutes, True)
        above = clean >= threshold[:, np.newaxis]
        first = np.where(above.any(axis=1), above.argmax(axis=1), -1)
        for i in np.flatnonzero((first >= 300) & (first >= onset + min_lead)):
            kept.append((noisy[i], float(threshold[i]), int(first[i])))
    kept = kept[:n]
    return Scenario(
        kind,
        np.stack([row for row, _, _ in kept]),
        np.array([limit for _, limit, _ in kept]),
        np.array([cross for _, _, cross in kept], dtype=np.int64),
    )


def _windows(values: FloatArray, ends: IntArray, length: int) -> FloatArray:
    """The ``length`` points ending (inclusive) at ``ends[i]`` of each row."""
    columns = ends[:, np.newaxis] - np.arange(length - 1, -1, -1)[np.newaxis, :]
    return np.asarray(values[np.arange(values.shape[0])[:, np.newaxis], columns])


def evaluate_time_to_threshold(
    scenario: Scenario,
    *,
    leads: tuple[int, ...] = DEFAULT_LEADS,
    window_points: int = 120,
    baseline_window_points: int = 60,
    cap_minutes: float = 1440.0,
) -> ForecastEvaluation:
    """Absolute error of the predicted minutes-to-threshold at ``leads`` minutes before crossing.

    Predictions (ours and ``predict_linear`` over ``baseline_window_points``) are capped at
    ``cap_minutes`` so that a missed crossing (``inf``) counts as a large, finite error.
    """
    errors: dict[int, FloatArray] = {}
    baseline: dict[int, FloatArray] = {}
    for lead in leads:
        ends = scenario.crossing - lead
        ours = forecast_time_to_threshold(
            _windows(scenario.values, ends, window_points),
            scenario.threshold,
            window_points=window_points,
        ).time_to_threshold
        linear = predict_linear_time_to_threshold(
            _windows(scenario.values, ends, baseline_window_points),
            scenario.threshold,
            window_points=baseline_window_points,
        )
        errors[lead] = np.abs(np.minimum(ours / 60.0, cap_minutes) - lead)
        baseline[lead] = np.abs(np.minimum(linear / 60.0, cap_minutes) - lead)
    ours_all = np.concatenate(list(errors.values()))
    base_all = np.concatenate(list(baseline.values()))
    summary = {
        "forecast_mae_minutes": float(ours_all.mean()),
        "forecast_median_ae_minutes": float(np.median(ours_all)),
        "predict_linear_mae_minutes": float(base_all.mean()),
        "predict_linear_median_ae_minutes": float(np.median(base_all)),
    }
    return ForecastEvaluation(leads, errors, baseline, summary)


def false_cross_rates(
    scenario: Scenario,
    *,
    horizon_minutes: float = 120.0,
    every_minutes: int = 15,
    window_points: int = 120,
    baseline_window_points: int = 60,
) -> tuple[float, float]:
    """Share of "will cross within the horizon" calls on healthy series: (ours, predict_linear).

    Healthy series never reach their limit, so every call is false. Calls are made every
    ``every_minutes`` once a full window of history exists.
    """
    n_series, minutes = scenario.values.shape
    ours_calls = 0
    base_calls = 0
    total = 0
    for end in range(window_points - 1, minutes, every_minutes):
        ends = np.full(n_series, end, dtype=np.int64)
        ours = forecast_time_to_threshold(
            _windows(scenario.values, ends, window_points),
            scenario.threshold,
            window_points=window_points,
        )
        linear = predict_linear_time_to_threshold(
            _windows(scenario.values, ends, baseline_window_points),
            scenario.threshold,
            window_points=baseline_window_points,
        )
        ours_calls += int(ours.will_cross_within(horizon_minutes * 60.0).sum())
        base_calls += int((linear <= horizon_minutes * 60.0).sum())
        total += n_series
    return ours_calls / total, base_calls / total


def compare_with_predict_linear(n_per_kind: int = 200, seed: int = 0) -> dict[str, float]:
    """The headline comparison over all three kinds: errors and false-call rates."""
    degradations = [
        simulate(kind, n_per_kind, degrade=True, seed=seed + i) for i, kind in enumerate(SIMULATORS)
    ]
    healthy = [
        simulate(kind, n_per_kind, degrade=False, seed=seed + 10 + i)
        for i, kind in enumerate(SIMULATORS)
    ]
    result: dict[str, float] = {}
    ours_errors: list[FloatArray] = []
    base_errors: list[FloatArray] = []
    by_lead: dict[int, tuple[list[FloatArray], list[FloatArray]]] = {}
    for scenario in degradations:
        evaluation = evaluate_time_to_threshold(scenario)
        for key, value in evaluation.summary.items():
            result[f"{scenario.kind}_{key}"] = round(value, 2)
        ours_errors.extend(evaluation.errors.values())
        base_errors.extend(evaluation.baseline_errors.values())
        for lead in evaluation.leads:
            ours, base = by_lead.setdefault(lead, ([], []))
            ours.append(evaluation.errors[lead])
            base.append(evaluation.baseline_errors[lead])
    for lead, (ours_at, base_at) in by_lead.items():
        result[f"lead_{lead}_forecast_median_ae_minutes"] = round(
            float(np.median(np.concatenate(ours_at))), 2
        )
        result[f"lead_{lead}_predict_linear_median_ae_minutes"] = round(
            float(np.median(np.concatenate(base_at))), 2
        )
    ours_all, base_all = np.concatenate(ours_errors), np.concatenate(base_errors)
    result["forecast_mae_minutes"] = round(float(ours_all.mean()), 2)
    result["forecast_median_ae_minutes"] = round(float(np.median(ours_all)), 2)
    result["predict_linear_mae_minutes"] = round(float(base_all.mean()), 2)
    result["predict_linear_median_ae_minutes"] = round(float(np.median(base_all)), 2)
    calls = [false_cross_rates(scenario) for scenario in healthy]
    for scenario, (ours_rate, base_rate) in zip(healthy, calls, strict=True):
        result[f"{scenario.kind}_false_cross_rate"] = round(ours_rate, 4)
        result[f"{scenario.kind}_predict_linear_false_cross_rate"] = round(base_rate, 4)
    result["false_cross_rate"] = round(float(np.mean([c[0] for c in calls])), 4)
    result["predict_linear_false_cross_rate"] = round(float(np.mean([c[1] for c in calls])), 4)
    return result
