from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import DetectorState, detect, initial_state, update, update_with_components
from tests.models.conftest import MINUTE, START, seasonal

ALERT = 0.5  # the alert level the tests hold the detector to
ONSET = 2000


def _scores_with(anomaly: str, seed: int = 3) -> np.ndarray:
    values = seasonal(1, 3 * 1440, seed)[0]
    if anomaly == "spike":
        values[ONSET] += 8.0
    elif anomaly == "level_shift":
        values[ONSET:] += 5.0
    elif anomaly == "trend_break":
        values[ONSET:] += 0.3 * np.arange(values.size - ONSET)
    elif anomaly == "stuck":
        values[ONSET : ONSET + 120] = values[ONSET - 1]
    elif anomaly == "dropout":
        values[ONSET : ONSET + 40] = np.nan
    timestamps = START + np.arange(values.size) * MINUTE
    scores, _ = detect(values, timestamps)
    return scores[0]


def test_clean_seasonal_series_stay_below_the_alert_level(minutes: np.ndarray) -> None:
    values = seasonal(200, minutes.size, seed=7)
    scores, _ = detect(values, minutes)
    assert scores.shape == values.shape
    assert scores.max() < ALERT
    # Quiet, not just below the line: almost every point scores exactly 0.
    assert (scores > 0).mean() < 0.002


@pytest.mark.parametrize(
    ("anomaly", "within"),
    [("spike", 0), ("level_shift", 5), ("trend_break", 30), ("stuck", 16), ("dropout", 3)],
)
def test_each_kind_of_anomaly_is_detected_near_its_onset(anomaly: str, within: int) -> None:
    scores = _scores_with(anomaly)
    assert scores[: ONSET - 1].max() < ALERT
    first_alert = int(np.argmax(scores[ONSET:] >= ALERT))
    assert scores[ONSET + first_alert] >= ALERT
    assert first_alert <= within


def test_score_settles_after_a_sustained_level_shift() -> None:
    scores = _scores_with("level_shift")
    assert scores[ONSET : ONSET + 10].max() > 0.8
    # The new level is learnt: quiet again from 150 points after the shift, to the end.
    assert scores[ONSET + 150 :].max() < ALERT


def test_stuck_and_dropout_scores_settle_while_the_condition_lasts() -> None:
    stuck = _scores_with("stuck")
    assert stuck[ONSET + 16] > 0.9
    assert stuck[ONSET + 110] < 0.3


def test_components_name_the_kind() -> None:
    values = seasonal(2, 3000, seed=5)
    values[0, ONSET] += 10.0
    values[1, ONSET : ONSET + 60] = np.nan
    detection = update_with_components(initial_state(2), values)
    assert detection.spike[0, ONSET] > 0.9
    assert detection.dropout[1, ONSET + 5] > 0.9
    assert detection.dropout[0].max() == 0.0
    np.testing.assert_array_equal(
        detection.scores,
        np.maximum.reduce([detection.spike, detection.shift, detection.stuck, detection.dropout]),
    )


def test_incremental_update_equals_scoring_the_whole_history(minutes: np.ndarray) -> None:
    values = seasonal(50, minutes.size, seed=11)
    values[3, 100:140] = np.nan  # a series still in warm-up when the others are not
    values[7, 2500] += 20
    values[9, 900:] = values[9, 899]
    whole, final = detect(values, minutes)
    state = initial_state(values.shape[0])
    pieces = []
    for start, stop in [(0, 1), (1, 17), (17, 500), (500, 2999), (2999, minutes.size)]:
        scores, state = update(state, values[:, start:stop], minutes[start:stop])
        pieces.append(scores)
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
    np.testing.assert_array_equal(state.level, final.level)


def test_one_point_per_series_update_and_json_round_trip(minutes: np.ndarray) -> None:
    values = seasonal(20, 400, seed=2)
    whole, _ = detect(values, minutes[:400])
    _, state = detect(values[:, :399], minutes[:399])
    restored = DetectorState.from_dict(json.loads(json.dumps(state.to_dict())))
    last, _ = update(restored, values[:, 399], minutes[399:400])
    np.testing.assert_array_equal(last[:, 0], whole[:, 399])


def test_series_scored_together_equal_series_scored_alone(minutes: np.ndarray) -> None:
    # More series than one tile of the compiled recurrence, and a ragged last tile.
    values = seasonal(70, 600, seed=4)
    values[1, :80] = np.nan
    values[40, 300:] = values[40, 299]
    together, _ = detect(values, minutes[:600])
    for i in (0, 1, 31, 32, 40, 63, 64, 69):
        alone, _ = detect(values[i : i + 1], minutes[:600])
        np.testing.assert_array_equal(alone[0], together[i])


def test_infinite_readings_count_as_missing(minutes: np.ndarray) -> None:
    values = seasonal(3, 400, seed=6)
    gaps = np.zeros(values.shape, dtype=bool)
    gaps[0, 100:104] = gaps[1, 200] = gaps[2, 50:300:7] = True
    with_nan, with_inf = values.copy(), values.copy()
    with_nan[gaps] = np.nan
    with_inf[gaps] = np.where(np.arange(gaps.sum()) % 2, np.inf, -np.inf)
    a = update_with_components(initial_state(3), with_nan, minutes[:400])
    b = update_with_components(initial_state(3), with_inf, minutes[:400])
    for kind in ("scores", "spike", "shift", "stuck", "dropout"):
        np.testing.assert_array_equal(getattr(a, kind), getattr(b, kind), err_msg=kind)
    assert a.dropout[0, 103] > 0.5
    for name in ("level", "scale", "resolution", "last_valid", "changes", "missing", "count"):
        np.testing.assert_array_equal(getattr(a.state, name), getattr(b.state, name), name)


def test_the_detector_runs_where_numba_cannot_cache() -> None:
    # A read-only install run by an unprivileged user leaves numba no cache location; the
    # kernel is then compiled in the process rather than failing the import. Restricting
    # numba's cache locators to the one for zip imports reproduces that here.
    values = seasonal(2, 300, seed=2)
    expected, _ = detect(values)
    code = (
        "import sys, numpy as np, models._recurrence as r; from models import detect; "
        "values = np.load(sys.argv[1]); scores, _ = detect(values); "
        "print(type(r._kernel._cache).__name__); np.save(sys.argv[2], scores)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/values.npy", values)
        env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "ZipCacheLocator"}
        run = subprocess.run(
            [sys.executable, "-c", code, f"{tmp}/values.npy", f"{tmp}/scores.npy"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "NullCache"
        np.testing.assert_array_equal(np.load(f"{tmp}/scores.npy"), expected)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=2, max_size=120),
    cut=st.integers(1, 119),
)
def test_scores_are_causal(data: list[float], cut: int) -> None:
    values = np.array(data)
    cut = min(cut, values.size - 1)
    timestamps = START + np.arange(values.size) * MINUTE
    full, _ = detect(values, timestamps)
    prefix, _ = detect(values[:cut], timestamps[:cut])
    np.testing.assert_array_equal(prefix[0], full[0, :cut])
    assert np.isfinite(full).all()
    assert ((full >= 0) & (full <= 1)).all()


def test_quantised_series_do_not_fire_on_single_steps() -> None:
    # Whole degrees from a slowly drifting temperature: long flats, then one-degree steps.
    rng = np.random.default_rng(8)
    values = np.round(40 + np.cumsum(rng.normal(0, 0.05, (20, 4000)), axis=1))
    scores, _ = detect(values)
    # Once the series has shown its steps (the very first change of a so-far constant
    # series is news), single steps stay quiet.
    first_changes = np.argmax(np.cumsum(np.diff(values, axis=1) != 0, axis=1) >= 3, axis=1)
    assert first_changes.max() < 1000
    assert scores[:, 1000:].max() < ALERT
    values[:, 3000] += 10  # ten steps at once is a spike
    scores, _ = detect(values)
    assert (scores[:, 3000] > 0.9).all()


def test_without_timestamps_and_with_wrong_shapes() -> None:
    values = seasonal(3, 300, seed=1)
    scores, state = detect(values)
    assert scores.shape == (3, 300)
    with pytest.raises(ValueError):
        update(state, np.zeros((4, 2)))
    with pytest.raises(ValueError):
        detect(values, np.arange(10.0))
