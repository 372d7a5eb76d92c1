"""Fan wear from tachometer speed against the commanded duty cycle."""

from __future__ import annotations

import math

import numpy as np

from models import fan_wear
from models.fans import effectiveness


def _fans(minutes: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four healthy fans of one model (5000 rpm at full duty) under a wandering duty cycle."""
    rng = np.random.default_rng(seed)
    duty = np.clip(
        0.5 + 0.2 * np.sin(np.arange(minutes) / 9.0) + rng.normal(0, 0.03, (4, minutes)), 0, 1
    )
    rpm = np.round(duty * 5000.0 * rng.normal(1.0, 0.01, (4, minutes)))
    return rpm, duty


def test_healthy_fans_give_no_signal() -> None:
    rpm, duty = _fans()
    wear = fan_wear(rpm, duty, ["orin"] * 4)
    assert np.all(wear.signal == 0.0)
    np.testing.assert_allclose(wear.relative, 1.0, atol=0.05)
    np.testing.assert_allclose(wear.reference, 5000.0, rtol=0.05)
    assert np.all(np.isinf(wear.time_to_stall_s))


def test_a_stopped_fan_is_failed_even_while_its_duty_rises() -> None:
    rpm, duty = _fans()
    duty[0, -10:] = 1.0  # the controller drives it harder as the device heats up
    rpm[0, -10:] = 150.0  # ... and it barely turns
    wear = fan_wear(rpm, duty, ["orin"] * 4)
    assert wear.signal[0] == 1.0
    assert wear.relative[0] < 0.05
    assert np.all(wear.signal[1:] == 0.0)


def test_a_wearing_fan_is_flagged_with_the_time_until_it_stops() -> None:
    minutes = 120
    rpm, duty = _fans(minutes)
    health = np.linspace(0.9, 0.45, minutes)  # loses 0.45 of its speed in two hours
    rpm[1] = np.round(duty[1] * 5000.0 * health)
    wear = fan_wear(rpm, duty, ["orin"] * 4)
    assert 0.4 < wear.relative[1] < 0.5
    assert wear.signal[1] == 1.0
    # 0.45 left at a loss of 0.45 / 119 per minute: about two hours more
    assert math.isclose(wear.time_to_stall_s[1], 119 * 60, rel_tol=0.15)
    assert wear.trend_per_s[1] < 0


def test_a_fan_weak_from_the_start_is_measured_against_its_peers() -> None:
    rpm, duty = _fans()
    rpm[2] = np.round(rpm[2] * 0.55)  # weak for the whole window: its own best is no reference
    alone = fan_wear(rpm[2:3], duty[2:3])
    with_peers = fan_wear(rpm, duty, ["orin"] * 4, min_peers=2)
    assert alone.signal[0] == 0.0
    assert with_peers.signal[2] > 0.8
    # fans of another model are not peers
    other = fan_wear(rpm, duty, ["orin", "orin", "xavier", "orin"], min_peers=2)
    assert other.signal[2] == 0.0


def test_low_duty_and_gaps_are_unknown_not_failed() -> None:
    rpm, duty = _fans()
    duty[3] = 0.05  # below the duty at which a fan may legitimately stand still
    rpm[3] = 0.0
    rpm[0, 50:70] = np.nan
    wear = fan_wear(rpm, duty, ["orin"] * 4)
    assert math.isnan(wear.relative[3]) and wear.signal[3] == 0.0
    assert wear.signal[0] == 0.0
    assert np.isnan(effectiveness([100.0, 100.0], [0.0, 0.1])).all()


def test_the_freshest_reading_flags_a_fan_that_just_stopped() -> None:
    rpm, duty = _fans()
    rpm[0, -1] = rpm[0, -1] * 0.4  # stopped during the last minute of the window
    latest_rpm = np.array([90.0, 90.0, rpm[2, -1], rpm[3, -1]])
    latest_duty = np.array([0.9, 0.9, duty[2, -1], duty[3, -1]])
    settled = fan_wear(rpm, duty, ["orin"] * 4)
    fresh = fan_wear(rpm, duty, ["orin"] * 4, latest_rpm=latest_rpm, latest_duty=latest_duty)
    assert settled.signal[0] == 0.0  # the median of the last points has not moved yet
    assert fresh.signal[0] == 1.0
    # fan 1 reads low once, but its last minute was sound: a misread, not a stop
    assert fresh.signal[1] == 0.0
    assert np.all(fresh.signal[2:] == 0.0)
