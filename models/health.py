"""Device health: a risk of failure per device for a horizon, with the signals behind it.

Signals are combined as independent hazards: ``risk = 1 - prod(1 - weight_i * signal_i)``, so
any one strong signal makes a device risky, several weak ones add up, and the contribution of
each signal is its share of the total log-survival. A forecast crossing counts fully when the
limit is expected within the horizon and fades as the expected time grows past it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models._common import FloatArray

DEFAULT_WEIGHTS: dict[str, float] = {
    "anomaly": 0.5,
    "peer": 0.4,
    "forecast": 0.9,
    "component_broken": 0.8,
    "device_unhealthy": 0.7,
}


@dataclass(frozen=True)
class HealthScores:
    """Risk in [0, 1] per device, and per device the top signals as (name, contribution)."""

    risk: FloatArray
    contributions: dict[str, FloatArray]
    top_signals: list[list[tuple[str, float]]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "risk": self.risk.tolist(),
            "contributions": {name: c.tolist() for name, c in self.contributions.items()},
            "top_signals": [[list(pair) for pair in signals] for signals in self.top_signals],
        }


def forecast_pressure(time_to_threshold_seconds: Any, horizon_seconds: float) -> FloatArray:
    """1 when a crossing is expected within the horizon, decaying as it moves beyond it.

    ``exp(-(t - horizon) / horizon)`` past the horizon: a crossing expected at twice the horizon
    still counts for 0.37, one a week away for nothing. ``inf`` (no crossing) gives 0.
    """
    t = np.asarray(time_to_threshold_seconds, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        pressure = np.exp(-np.maximum(t - horizon_seconds, 0.0) / horizon_seconds)
    return np.asarray(np.where(np.isnan(t), 0.0, pressure), dtype=np.float64)


def health_scores(
    signals: dict[str, Any],
    *,
    weights: dict[str, float] | None = None,
    top: int = 3,
) -> HealthScores:
    """Combine per-device signals in [0, 1] (NaN = unknown = 0) into a risk per device.

    ``signals`` maps a signal name to one value per device, e.g. ``{"anomaly:gpu_temp":
    max recent anomaly score, "peer:gpu_temp": peer score, "forecast:disk":
    forecast_pressure(ttt, 3600), "component_broken": 0/1, "device_unhealthy": 0/1}``. A
    name's weight is looked up by its full name, then by the part before ``:``, else 0.6.
    ``top_signals`` lists, per device, the ``top`` signals with the largest contributions
    (shares of the risk, summing to the risk), largest first, omitting zero contributions.
    """
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    names = list(signals)
    if not names:
        return HealthScores(np.zeros(0), {}, [])
    matrix = np.stack([np.asarray(signals[name], dtype=np.float64) for name in names])
    matrix = np.clip(np.nan_to_num(matrix, nan=0.0), 0.0, 1.0)
    w = np.array([weights.get(n, weights.get(n.split(":")[0], 0.6)) for n in names])
    hazard = np.clip(w[:, np.newaxis] * matrix, 0.0, 1.0 - 1e-12)
    log_survival = -np.log1p(-hazard)
    total = log_survival.sum(axis=0)
    risk = 1.0 - np.exp(-total)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, log_survival / total, 0.0) * risk
    contributions = {name: share[i] for i, name in enumerate(names)}
    order = np.argsort(-share, axis=0, kind="stable")
    top_signals = [
        [
            (names[k], round(float(share[k, device]), 4))
            for k in order[:top, device]
            if share[k, device] > 0
        ]
        for device in range(matrix.shape[1])
    ]
    return HealthScores(risk=risk, contributions=contributions, top_signals=top_signals)


def health_by_horizon(
    *,
    anomaly: dict[str, Any] | None = None,
    peer: dict[str, Any] | None = None,
    time_to_threshold: dict[str, Any] | None = None,
    states: dict[str, Any] | None = None,
    horizons_seconds: dict[str, float] | None = None,
    weights: dict[str, float] | None = None,
) -> dict[str, HealthScores]:
    """Risk per device for each horizon (default: the next hour and the next day).

    ``anomaly`` and ``peer`` map a metric name to scores per device, ``time_to_threshold``
    maps a limit name to seconds per device (``inf`` = none expected), ``states`` maps a state
    (``component_broken``, ``device_unhealthy``) to 0/1 per device. Signals are named
    ``anomaly:<metric>``, ``peer:<metric>``, ``forecast:<limit>`` and the state names.
    """
    horizons = horizons_seconds or {"next_hour": 3600.0, "next_day": 86_400.0}
    current: dict[str, Any] = {}
    for prefix, group in (("anomaly", anomaly), ("peer", peer)):
        current.update({f"{prefix}:{name}": v for name, v in (group or {}).items()})
    current.update(states or {})
    result = {}
    for label, horizon in horizons.items():
        signals = dict(current)
        for name, seconds in (time_to_threshold or {}).items():
            signals[f"forecast:{name}"] = forecast_pressure(seconds, horizon)
        result[label] = health_scores(signals, weights=weights)
    return result
