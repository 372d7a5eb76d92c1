"""Fan wear: is each fan still turning as fast as its duty cycle asks, and for how long?

A fan's tachometer speed is proportional to the PWM duty its controller commands (rpm per unit
of duty is the fan's speed at full duty). A fan that wears (a dry bearing, dust in the blades)
turns slower for the same duty; a fan that fails stops turning while the controller drives it
ever harder as the device heats up. Both show in ``rpm / duty`` long before the temperature
they let rise reaches a trip point, and neither is visible in the rpm alone: the controller
raises the duty and hides the loss.

:func:`fan_wear` compares the recent effectiveness of each fan with a reference — the better
of its own recent best and the median of its peers (same fan model) — and fits a line through
its recent effectiveness to say when, at this rate, it stops.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from models._common import FloatArray, as_2d
from models.forecast import fit_lines

MIN_DUTY = 0.15  # below this duty a fan may legitimately stall or spin irregularly
WORN = 0.8  # relative effectiveness below which a fan counts as wearing
FAILED = 0.5  # ... and at which it counts as failed (half its airflow gone)


@dataclass(frozen=True)
class FanWear:
    """Per fan: effectiveness now and its reference (rpm at full duty), their ratio, the
    trend of that ratio per second, the time until it reaches zero (``inf``: not falling or
    not significantly), and a signal in [0, 1]: 0 down to ``WORN``, 1 at ``FAILED``."""

    effectiveness: FloatArray
    reference: FloatArray
    relative: FloatArray
    trend_per_s: FloatArray
    time_to_stall_s: FloatArray
    signal: FloatArray

    def to_dict(self) -> dict[str, list[float]]:
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}


def effectiveness(rpm: Any, duty: Any, *, min_duty: float = MIN_DUTY) -> FloatArray:
    """``rpm / duty`` (duty as a ratio 0..1), NaN where the duty is below ``min_duty``."""
    r = np.asarray(rpm, dtype=np.float64)
    d = np.asarray(duty, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = np.where(d >= min_duty, r / d, np.nan)
    return np.asarray(np.where(np.isfinite(out) & (out >= 0), out, np.nan), dtype=np.float64)


def fan_wear(
    rpm: Any,
    duty: Any,
    groups: Any = None,
    *,
    interval_seconds: float = 60.0,
    recent_points: int = 5,
    trend_points: int = 60,
    min_peers: int = 3,
    min_duty: float = MIN_DUTY,
    worn: float = WORN,
    failed: float = FAILED,
    significance_z: float = 3.0,
    latest_rpm: Any = None,
    latest_duty: Any = None,
) -> FanWear:
    """Wear of each fan from its windows of rpm and duty (fans x time, NaN for gaps).

    ``groups`` labels fans that should turn alike (the same fan model); a group of at least
    ``min_peers`` + 1 fans with a known effectiveness lends its median as a reference, so a
    fan that was already weak when its window began is still measured against a sound one.

    ``latest_rpm`` and ``latest_duty`` (one value per fan, NaN when unknown) are the freshest
    readings, newer than the window: a fan that stops turning is a state, and a device whose
    fan stops can reach its trip point within minutes. When both the freshest reading and the
    last point of the window are low, the fan counts as low now, without waiting for the
    median of ``recent_points`` to settle; one low reading alone (a misread tachometer) does
    not.
    """
    e = effectiveness(as_2d(rpm), as_2d(duty), min_duty=min_duty)
    n = e.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fans idle for the whole window
        now = np.nanmedian(e[:, -recent_points:], axis=1) if n else np.zeros(0)
        own = np.nanquantile(e, 0.9, axis=1) if n else np.zeros(0)
    if latest_rpm is not None and latest_duty is not None and n:
        fresh = effectiveness(latest_rpm, latest_duty, min_duty=min_duty)
        last = e[:, -1]
        with np.errstate(all="ignore"):
            both = np.where(np.isfinite(fresh) & np.isfinite(last), np.maximum(fresh, last), np.nan)
        now = np.fmin(now, both)
    reference = np.where(np.isfinite(own), own, np.nan)
    if groups is not None and n:
        labels = np.asarray(groups)
        for group in np.unique(labels):
            members = np.flatnonzero(labels == group)
            known = members[np.isfinite(own[members])]
            if len(known) > min_peers:
                peer = float(np.median(own[known]))
                reference[members] = np.fmax(reference[members], peer)
    with np.errstate(all="ignore"):
        relative = np.where(reference > 0, now / reference, np.nan)
        signal = np.clip((worn - relative) / (worn - failed), 0.0, 1.0)
    signal = np.where(np.isfinite(signal), signal, 0.0)
    trend, stall = _trend(e, reference, trend_points, significance_z, interval_seconds)
    return FanWear(
        effectiveness=now,
        reference=reference,
        relative=relative,
        trend_per_s=trend,
        time_to_stall_s=stall,
        signal=np.asarray(signal, dtype=np.float64),
    )


def _trend(
    e: FloatArray, reference: FloatArray, points: int, z: float, interval_seconds: float
) -> tuple[FloatArray, FloatArray]:
    """Slope of the relative effectiveness per second and the time until it reaches zero."""
    if e.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    with np.errstate(all="ignore"):
        line = fit_lines(e[:, -points:] / reference[:, np.newaxis])
        falling = (line.slope < 0) & (-line.slope > z * line.slope_se) & (line.n_points >= 10)
        stall = np.where(
            falling, np.maximum(line.level_at_end, 0.0) / -line.slope * interval_seconds, np.inf
        )
    trend = np.where(np.isfinite(line.slope), line.slope / interval_seconds, np.nan)
    return np.asarray(trend, dtype=np.float64), np.asarray(stall, dtype=np.float64)
